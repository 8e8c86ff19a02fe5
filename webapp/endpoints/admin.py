"""Django admin for model endpoints."""

from django.contrib import admin

from webapp.endpoints.models import ModelEndpoint


@admin.register(ModelEndpoint)
class ModelEndpointAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "model_name", "base_url", "as_student", "as_teacher", "as_assistant", "is_active", "last_check_ok", "last_seen_at")
    list_filter = ("kind", "is_active", "as_student", "as_teacher", "as_assistant")
    search_fields = ("name", "model_name", "base_url")
    readonly_fields = ("last_check_at", "last_check_ok", "last_check_message", "last_check_latency_ms", "created_at",
                       "announced_by", "announced_gpus", "last_seen_at")
