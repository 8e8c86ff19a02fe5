"""Admin for train: read-mostly views of sets, checkpoints and metrics."""

from django.contrib import admin

from webapp.train.models import Checkpoint, TrainingSet


@admin.register(TrainingSet)
class TrainingSetAdmin(admin.ModelAdmin):
    list_display = ["name", "target", "created_at", "created_by"]
    list_filter = ["target"]
    search_fields = ["name"]


@admin.register(Checkpoint)
class CheckpointAdmin(admin.ModelAdmin):
    list_display = ["run", "step", "is_final", "kind", "endpoint"]
    list_filter = ["is_final", "kind"]
