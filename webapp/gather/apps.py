"""App config for gather."""

from django.apps import AppConfig


class GatherConfig(AppConfig):
    name = "webapp.gather"
    label = "gather"
