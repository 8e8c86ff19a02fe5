"""Django admin for runs and their logs."""

from django.contrib import admin

from webapp.runs.models import Run, RunEvent


class RunEventInline(admin.TabularInline):
    model = RunEvent
    extra = 0
    readonly_fields = ("at", "level", "message")


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ("id", "kind", "name", "status", "progress_done", "progress_total", "cost", "created_at")
    list_filter = ("kind", "status")
    search_fields = ("name",)
    inlines = [RunEventInline]
    readonly_fields = ("created_at", "started_at", "finished_at", "heartbeat_at")
