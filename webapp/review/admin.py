"""Django admin for review queues and reviews (decisions are made on the review page, not here)."""

from django.contrib import admin

from webapp.review.models import Review, ReviewQueue


@admin.register(ReviewQueue)
class ReviewQueueAdmin(admin.ModelAdmin):
    list_display = ("name", "priority", "per_item", "created_by", "created_at")
    list_filter = ("priority",)
    search_fields = ("name",)
    filter_horizontal = ("annotators",)
    raw_id_fields = ("created_by",)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("id", "queue", "annotator", "position", "decision", "version", "decided_at")
    list_filter = ("decision", "queue")
    search_fields = ("annotator__username", "comment")
    list_select_related = ("queue", "annotator")
    raw_id_fields = ("queue", "feedback", "annotator", "updated_by")
    # version is the optimistic lock: editing it by hand would defeat it.
    readonly_fields = ("version", "decided_at", "updated_by")
