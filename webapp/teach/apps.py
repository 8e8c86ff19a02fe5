"""App config for teach."""

from django.apps import AppConfig


class TeachConfig(AppConfig):
    name = "webapp.teach"
    label = "teach"
