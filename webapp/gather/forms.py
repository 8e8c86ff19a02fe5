"""The gather launch form: what to ask, whom, how; GSI's guided resampling options."""

from __future__ import annotations

from django import forms

from pipeline.scoring import SCORERS
from webapp.datasets.models import Dataset
from webapp.endpoints.models import ModelEndpoint

GUIDANCE_CHOICES = [("answer", "Answer-driven"), ("rationale", "Rationale-driven"), ("state_reset", "State reset"),
                    ("teacher_help", "Teacher help")]
FRACTIONS = [("", "—"), ("0.2", "20%"), ("0.4", "40%"), ("0.6", "60%"), ("0.8", "80%")]


class GatherForm(forms.Form):
    name = forms.CharField(required=False, max_length=200, help_text="Empty: named after the model and dataset.")
    dataset = forms.ModelChoiceField(queryset=Dataset.objects.all())
    split = forms.ChoiceField(choices=[("train", "Train"), ("test", "Test"), ("all", "All")], initial="train")
    tasks = forms.CharField(required=False, help_text="Only these tasks, comma-separated (empty: all).")
    sample_size = forms.IntegerField(min_value=0, initial=0, help_text="A random sample of this many problems (0: all).")
    sample_seed = forms.IntegerField(min_value=0, initial=0)
    student = forms.ModelChoiceField(queryset=ModelEndpoint.objects.filter(is_active=True, as_student=True))
    style = forms.ChoiceField(choices=[("cot", "Chain of thought"), ("zero_shot", "Zero-shot"), ("few_shot", "Few-shot")], initial="cot")
    preset = forms.ChoiceField(choices=[], initial="errata", help_text="Wording and answer format, after one of the papers.")
    k_shots = forms.IntegerField(min_value=0, max_value=16, initial=0, help_text="Few-shot: worked examples from the train split.")
    samples_per_problem = forms.IntegerField(min_value=1, max_value=64, initial=1)
    temperature = forms.FloatField(min_value=0, max_value=2, initial=0.0)
    max_tokens = forms.IntegerField(min_value=1, max_value=32768, initial=256)
    seed = forms.IntegerField(required=False, min_value=0)
    scorer = forms.ChoiceField(required=False, choices=[("", "The dataset's scorer")] + [(n, n) for n in sorted(SCORERS)])
    use_cache = forms.BooleanField(required=False, initial=True, help_text="Reuse answers already paid for.")
    min_correct = forms.IntegerField(min_value=0, initial=0, help_text="GSI: resample problems with fewer right answers than this.")
    max_resample = forms.IntegerField(min_value=0, max_value=10, initial=0, help_text="GSI: at most this many guided rounds.")
    guidance_kinds = forms.MultipleChoiceField(required=False, choices=GUIDANCE_CHOICES, widget=forms.CheckboxSelectMultiple)
    state_reset_lines = forms.IntegerField(required=False, min_value=0, initial=0, help_text="State reset: first k lines of the gold solution…")
    state_reset_fraction = forms.ChoiceField(required=False, choices=FRACTIONS, help_text="…or this share of its tokens.")
    samples_per_round = forms.IntegerField(min_value=1, max_value=64, initial=1)
    teacher = forms.ModelChoiceField(required=False, queryset=ModelEndpoint.objects.filter(is_active=True, as_teacher=True),
                                     help_text="Teacher help: the teacher writes a correction, the student revises.")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from pipeline.prompts import PRESETS

        self.fields["preset"].choices = [(name, f"{name} — {preset.description}") for name, preset in PRESETS.items()]
        for name in ("dataset", "student"):
            choices = self.fields[name].queryset
            if not self.initial.get(name) and choices.count() == 1:  # the only choice: nothing to pick
                self.initial[name] = choices.first().pk

    def config(self) -> dict:
        """The run configuration as plain JSON; the service validates it in depth."""
        data = self.cleaned_data
        decoding = {"temperature": data["temperature"], "max_tokens": data["max_tokens"]}
        if data.get("seed") is not None:
            decoding["seed"] = data["seed"]
        return {
            "dataset_id": data["dataset"].pk, "student_endpoint_id": data["student"].pk, "split": data["split"],
            "tasks": [t.strip() for t in data["tasks"].split(",") if t.strip()], "sample_size": data["sample_size"],
            "sample_seed": data["sample_seed"], "samples_per_problem": data["samples_per_problem"],
            "prompt": {"style": data["style"], "preset": data["preset"], "k_shots": data["k_shots"]},
            "decoding": decoding, "scorer": data["scorer"], "use_cache": data["use_cache"],
            "guidance": {
                "min_correct": data["min_correct"], "max_resample": data["max_resample"], "kinds": data["guidance_kinds"],
                "state_reset_lines": data.get("state_reset_lines") or 0,
                "state_reset_fraction": float(data["state_reset_fraction"] or 0), "samples_per_round": data["samples_per_round"],
            },
            "teacher_endpoint_id": data["teacher"].pk if data.get("teacher") else None,
        }
