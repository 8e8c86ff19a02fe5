"""Gather page URLs."""

from django.urls import path

from webapp.gather import views

app_name = "gather"
urlpatterns = [
    path("new/", views.gather_new, name="new"),
    path("attempts/", views.attempt_browser, name="attempts"),
    path("attempts/<int:pk>/", views.attempt_detail, name="attempt"),
    path("import-seed/", views.seed_import_view, name="import-seed"),
    path("runs/<int:pk>/export/", views.seed_export_view, name="export"),
]
