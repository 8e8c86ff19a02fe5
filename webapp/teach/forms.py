"""The teacher-run form: method, teachers, which mistakes, samples, decoding, budget."""

from __future__ import annotations

from django import forms

from pipeline.teaching import METHODS
from webapp.core.uploads import validate_upload_size
from webapp.datasets.models import Dataset
from webapp.endpoints.models import ModelEndpoint
from webapp.runs.models import Run, RunKind
from webapp.teach.imports import FORMATS as FEEDBACK_FORMATS
from webapp.teach.models import Method


MAX_SELECTED = 5000  # mistakes one run takes from a browser selection


class TeachForm(forms.Form):
    name = forms.CharField(required=False, max_length=200)
    method = forms.ChoiceField(choices=[(m, label) for m, label in Method.choices if m in METHODS])
    teachers = forms.ModelMultipleChoiceField(
        queryset=ModelEndpoint.objects.filter(is_active=True, as_teacher=True), widget=forms.CheckboxSelectMultiple,
        help_text="FAIR needs two or more: each scores the others' rationales.")
    gather_run = forms.ModelChoiceField(required=False, queryset=Run.objects.filter(kind=RunKind.GATHER),
                                        help_text="Teach from this run's mistakes.")
    dataset = forms.ModelChoiceField(required=False, queryset=Dataset.objects.all(), help_text="LbT: rationales for this dataset…")
    split = forms.ChoiceField(choices=[("test", "Test"), ("train", "Train")], initial="test", help_text="…and split.")
    samples = forms.IntegerField(min_value=1, max_value=32, initial=1, help_text="Answers per mistake and teacher.")
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0.0)
    max_tokens = forms.IntegerField(min_value=1, max_value=32768, initial=512)
    budget_usd = forms.DecimalField(required=False, min_value=0, decimal_places=4, help_text="Stop cleanly at this cost.")
    hint_answer = forms.BooleanField(required=False, help_text="LEMA: show the teacher the correct answer.")
    use_cache = forms.BooleanField(required=False, initial=True)
    mistakes_filter = forms.CharField(required=False, widget=forms.HiddenInput,
                                      help_text="A mistakes-browser filter (query string) to teach from instead of a run.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        runs = self.fields["gather_run"].queryset
        if not self.initial.get("gather_run") and runs.exists():
            self.initial["gather_run"] = runs.first().pk  # the newest gather run

    def selected_mistakes(self) -> list[int] | None:
        """The ids of the wrong answers a mistakes-browser filter selects, or None without one."""
        raw = getattr(self, "cleaned_data", {}).get("mistakes_filter") or self.initial.get("mistakes_filter")
        if not raw:
            return None
        from django.http import QueryDict

        from webapp.gather.selectors import AttemptFilter, attempt_search

        params = QueryDict(raw, mutable=True)
        params["correct"] = "no"  # teachers explain mistakes only
        return list(attempt_search(AttemptFilter.from_params(params)).values_list("pk", flat=True)[:MAX_SELECTED])

    def config(self) -> dict:
        data = self.cleaned_data
        selected = self.selected_mistakes()
        if data["method"] == "lbt":
            source = {"dataset_id": data["dataset"].pk if data.get("dataset") else None, "split": data["split"]}
        elif selected is not None:
            source = {"attempt_ids": selected}
        else:
            source = {"gather_run_id": data["gather_run"].pk if data.get("gather_run") else None}
        return {
            "method": data["method"], "teacher_endpoint_ids": [t.pk for t in data["teachers"]], **source,
            "samples": data["samples"], "decoding": {"temperature": data["temperature"], "max_tokens": data["max_tokens"]},
            "budget_usd": float(data["budget_usd"]) if data.get("budget_usd") is not None else None,
            "hint_answer": data["hint_answer"], "use_cache": data["use_cache"],
        }


class TemplateForm(forms.Form):
    system = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))
    user = forms.CharField(widget=forms.Textarea(attrs={"rows": 12}), help_text="Placeholders in {braces}; literal braces as {{ }}.")
    note = forms.CharField(required=False, max_length=300, help_text="What this version changes.")


class FeedbackImportForm(forms.Form):
    file = forms.FileField(validators=[validate_upload_size],
                           help_text="SALAM finetune data, or a FAIR *_feedback_round0.json / *_rationale_round0.json.")
    format = forms.ChoiceField(required=False, choices=[("", "Detect from the content")] +
                               [(name, f"{name} — {description}") for name, description in FEEDBACK_FORMATS.items()])
    teacher_name = forms.CharField(required=False, max_length=200,
                                   help_text="SALAM's teacher, recorded as imported:NAME (default gpt-4). FAIR files name theirs.")
