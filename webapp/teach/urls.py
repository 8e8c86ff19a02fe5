"""Teach page URLs."""

from django.urls import path

from webapp.teach import views

app_name = "teach"
urlpatterns = [
    path("new/", views.teach_new, name="new"),
    path("feedback/", views.feedback_list, name="feedback-list"),
    path("feedback/import/", views.feedback_import_view, name="import"),
    path("feedback/<int:pk>/", views.feedback_detail, name="feedback"),
    path("templates/", views.template_list, name="templates"),
    path("templates/<slug:name>/", views.template_edit, name="template-edit"),
]
