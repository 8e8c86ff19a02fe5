"""Django admin for datasets, problems and imports."""

from django.contrib import admin

from webapp.datasets.models import Dataset, DatasetImport, Problem


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "benchmark", "answer_format", "scorer", "created_at")
    search_fields = ("name", "source")
    list_filter = ("benchmark",)


@admin.register(Problem)
class ProblemAdmin(admin.ModelAdmin):
    list_display = ("external_id", "dataset", "split", "task", "gold_answer")
    list_filter = ("split", "dataset")
    search_fields = ("external_id", "question")
    list_select_related = ("dataset",)
    raw_id_fields = ("dataset",)


@admin.register(DatasetImport)
class DatasetImportAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "dataset_name", "detected_format", "problems_added", "created_at")
    list_filter = ("status",)
    readonly_fields = [f.name for f in DatasetImport._meta.fields]
