"""App config for train."""

from django.apps import AppConfig


class TrainConfig(AppConfig):
    name = "webapp.train"
    label = "train"
