"""Exam page URLs."""

from django.urls import path

from webapp.exams import views

app_name = "exams"
urlpatterns = [
    path("", views.exam_list, name="list"),
    path("new/", views.exam_new, name="new"),
    path("compare/", views.exam_compare, name="compare"),
    path("<int:pk>/", views.exam_report, name="report"),
    path("<int:pk>/export/", views.exam_export, name="export"),
    path("answers/<int:pk>/trace/", views.answer_trace_view, name="trace"),
]
