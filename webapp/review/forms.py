"""Forms of the review pages: a new queue (which feedback, who, how), a bulk decision, one annotator's decision."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from pipeline.seeds import salam_finetune
from webapp.review.models import Decision, Priority
from webapp.review.selectors import BULK_FILTERS, FeedbackFilter
from webapp.runs.models import Run, RunKind
from webapp.teach.models import Method


class AnnotatorChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, user) -> str:
        return f"{user.username} ({user.get_role_display().lower()})"


class QueueForm(forms.Form):
    name = forms.CharField(max_length=200)
    run = forms.ModelChoiceField(required=False, queryset=Run.objects.filter(kind=RunKind.TEACH), empty_label="Any run",
                                 help_text="The teacher run whose feedback to review (empty: all feedback).")
    method = forms.ChoiceField(required=False, choices=[("", "Any method")] + Method.choices)
    teacher = forms.CharField(required=False, max_length=200, help_text="Only teachers whose name contains this.")
    checks = forms.ChoiceField(required=False, choices=[("", "Any"), ("failed", "A check failed"), ("passed", "No check failed")],
                               help_text="Automatic checks: parse, corrected answer, peer review.")
    unreviewed = forms.BooleanField(required=False, label="Only feedback in no other queue",
                                    help_text="Leave out feedback that is already being reviewed.")
    annotators = AnnotatorChoiceField(queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
                                                widget=forms.CheckboxSelectMultiple)
    per_item = forms.IntegerField(min_value=1, max_value=20, initial=1, label="Annotators per item")
    priority = forms.ChoiceField(choices=Priority.choices, initial=Priority.CHECKS_FIRST)
    seed = forms.IntegerField(min_value=0, initial=0, help_text="Seed of the random order.")

    def clean(self):
        data = super().clean()
        annotators = data.get("annotators")
        if annotators is not None and data.get("per_item") and data["per_item"] > len(annotators):
            self.add_error("per_item", f"Only {len(annotators)} annotator{'s' if len(annotators) != 1 else ''} chosen.")
        return data

    def feedback_filter(self) -> FeedbackFilter:
        data = self.cleaned_data
        return FeedbackFilter(run=data["run"].pk if data["run"] else None, method=data["method"], teacher=data["teacher"],
                              checks=data["checks"], unreviewed=data["unreviewed"])


class BulkForm(forms.Form):
    decision = forms.ChoiceField(choices=[(Decision.APPROVE, "Approve"), (Decision.REJECT, "Reject")])
    filter = forms.ChoiceField(choices=[(name, label) for name, (label, _) in BULK_FILTERS.items()],
                               label="Every pending item where")


class DecisionForm(forms.Form):
    """One decision. On SALAM feedback an edit comes as two boxes, ``reason`` and ``guideline``, composed into
    the JSON text SALAM trains on; a client that sends that JSON as ``edited_text`` instead works as before."""

    version = forms.IntegerField(min_value=0)
    decision = forms.ChoiceField(choices=[(d, d) for d in Decision.values if d != Decision.PENDING])
    edited_text = forms.CharField(required=False, strip=False)
    reason = forms.CharField(required=False, strip=False)
    guideline = forms.CharField(required=False, strip=False)
    comment = forms.CharField(required=False, max_length=5000)
    seconds = forms.FloatField(required=False, min_value=0)

    def __init__(self, *args, salam: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.salam = salam

    def clean(self):
        data = super().clean()
        boxes = self.salam and ("reason" in self.data or "guideline" in self.data)
        if not boxes or data.get("decision") != Decision.EDIT:
            return data
        parts = {name: (data.get(name) or "").replace("\r\n", "\n").strip() for name in salam_finetune.OUTPUT_KEYS}
        for name, text in parts.items():
            if not text:
                self.add_error(name, f"Write the {name} too — SALAM's feedback has a reason and a guideline.")
        if all(parts.values()):
            data["edited_text"] = salam_finetune.render_output(**parts)
        return data

    def submission(self) -> dict:
        """The decision as ``review_submit`` takes it (SALAM's boxes already composed into ``edited_text``)."""
        return {name: self.cleaned_data[name] for name in ("version", "decision", "edited_text", "comment", "seconds")}
