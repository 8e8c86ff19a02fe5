"""Forms for datasets: the import form (several files at once, format, name, split)."""

from __future__ import annotations

from django import forms

from pipeline.benchmarks import FORMATS
from pipeline.splits import SPLIT_RULES
from webapp.core.uploads import validate_upload_size
from webapp.datasets.services import ImportOptions

SPLIT_LABELS = {
    "auto": "Keep the file's split if it has one, else seeded",
    "file": "Keep the file's split",
    "seeded": "Seeded random split",
    "first80": "First 80% of each task trains (SALAM)",
}


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes several files (Django's documented pattern)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            if not data and self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            files = [single(item, initial) for item in data]
        else:
            files = [single(data, initial)]
        for upload in files:
            validate_upload_size(upload)
        return files


class ImportForm(forms.Form):
    files = MultipleFileField(help_text="One file, or several files of one format (e.g. the 27 BBH tasks).")
    format = forms.ChoiceField(
        required=False,
        choices=[("", "Detect from the content")] + [(name, f"{name} — {info.description}") for name, info in sorted(FORMATS.items())],
    )
    dataset_name = forms.CharField(required=False, max_length=200, help_text="Empty: named after the file. An existing name adds to that dataset.")
    split_rule = forms.ChoiceField(choices=[(rule, SPLIT_LABELS[rule]) for rule in SPLIT_RULES], initial="auto")
    seed = forms.IntegerField(initial=0, min_value=0, help_text="Seed of the random split.")
    test_fraction = forms.FloatField(initial=0.2, min_value=0.01, max_value=0.99)
    license_note = forms.CharField(required=False, max_length=500)

    def options(self) -> ImportOptions:
        return ImportOptions.from_fields(**self.cleaned_data)
