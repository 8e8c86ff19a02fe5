"""App config for exams."""

from django.apps import AppConfig


class ExamsConfig(AppConfig):
    name = "webapp.exams"
    label = "exams"
