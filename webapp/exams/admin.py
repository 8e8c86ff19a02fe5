"""Admin for exams: read-mostly views of final answers."""

from django.contrib import admin

from webapp.exams.models import ExamAnswer


@admin.register(ExamAnswer)
class ExamAnswerAdmin(admin.ModelAdmin):
    list_display = ["run", "problem", "answer", "correct", "excluded"]
    list_filter = ["correct", "excluded"]
    raw_id_fields = ["run", "problem", "attempt"]
