"""Forms for building a training set and launching a training run."""

from __future__ import annotations

from django import forms

from pipeline.training.config import PRESETS
from webapp.core.uploads import validate_upload_size
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.review.models import ReviewQueue
from webapp.review.selectors import APPROVAL_RULES
from webapp.runs.models import Run, RunKind
from webapp.train.models import Target, TrainingSet

SOURCES = [("queue", "Approved reviews of a queue"), ("gather", "Correct answers of a gather run (GSI)"),
           ("file", "A file (chat JSONL, LEMA, SALAM finetune data, DPO pairs)")]
QUEUE_TARGET_CHOICES = [(t.value, t.label) for t in (Target.SALAM_ASSISTANT, Target.LEMA_STUDENT, Target.FAIR_STUDENT, Target.DPO)]


class TrainingSetForm(forms.Form):
    name = forms.CharField(max_length=200)
    source = forms.ChoiceField(choices=SOURCES, initial="queue")
    queue = forms.ModelChoiceField(ReviewQueue.objects.all(), required=False)
    target = forms.ChoiceField(choices=QUEUE_TARGET_CHOICES, required=False, help_text="For a queue: what to train.")
    rule = forms.ChoiceField(choices=[(r, r) for r in APPROVAL_RULES], initial="majority", required=False,
                             help_text="majority: more approvals than rejections; any: at least one approval.")
    gather_run = forms.ModelChoiceField(Run.objects.filter(kind=RunKind.GATHER), required=False)
    file = forms.FileField(required=False, validators=[validate_upload_size])
    cot_ratio = forms.FloatField(min_value=0, max_value=10, initial=0.0, required=False,
                                 help_text="LEMA: chain-of-thought examples per correction (train problems with a gold rationale).")
    validation_share = forms.FloatField(min_value=0, max_value=0.5, initial=0.1)
    seed = forms.IntegerField(min_value=0, initial=0)

    def clean(self):
        data = super().clean()
        needs = {"queue": ("queue", "target"), "gather": ("gather_run",), "file": ("file",)}
        for name in needs.get(data.get("source"), ()):
            if not data.get(name):
                self.add_error(name, f"Needed for this source.")
        return data


class TrainLaunchForm(forms.Form):
    """The preset fills every setting; a field given here overrides it."""

    name = forms.CharField(max_length=200, required=False)
    training_set = forms.ModelChoiceField(TrainingSet.objects.all())
    base = forms.ModelChoiceField(ModelEndpoint.objects.filter(kind=EndpointKind.LOCAL, is_active=True).exclude(base_weights=""),
                                  label="Base model", help_text="A local model with weights on disk.")
    preset = forms.ChoiceField(choices=[(name, name) for name in PRESETS], initial="cpu-lora-smollm2")
    method = forms.ChoiceField(choices=[("", "preset's"), ("lora", "LoRA"), ("qlora", "QLoRA (GPU)"), ("full", "Full fine-tune")],
                               required=False)
    lora_r = forms.IntegerField(label="LoRA r", min_value=1, required=False)
    lora_alpha = forms.IntegerField(label="LoRA alpha", min_value=1, required=False)
    learning_rate = forms.FloatField(min_value=0, required=False)
    max_steps = forms.IntegerField(min_value=1, required=False, help_text="Steps (wins over epochs).")
    epochs = forms.FloatField(min_value=0.01, required=False)
    batch_size = forms.IntegerField(min_value=1, required=False)
    max_length = forms.IntegerField(min_value=16, required=False, help_text="Tokens; longer examples are cut.")
    fair_alpha = forms.FloatField(min_value=0, max_value=1, required=False, label="FAIR α",
                                  help_text="Weight of the feedback part; the rationale part gets 1 − α.")
    merge = forms.BooleanField(required=False, help_text="Also save the adapter merged into the base weights.")
    auto_register = forms.BooleanField(required=False, initial=True, label="Serve when done",
                                       help_text="Load the result into the model server as a new model.")

    def config(self) -> dict:
        """The TrainConfig fields: the preset's, overridden by what was filled in."""
        data = self.cleaned_data
        config = dict(PRESETS[data["preset"]])
        for name in ("method", "learning_rate", "max_steps", "epochs", "batch_size", "max_length"):
            if data.get(name) not in (None, ""):
                config[name] = data[name]
        lora = dict(config.get("lora") or {})
        for name, key in (("lora_r", "r"), ("lora_alpha", "alpha")):
            if data.get(name):
                lora[key] = data[name]
        if lora:
            config["lora"] = lora
        if data.get("fair_alpha") is not None:
            config["loss_weights"] = {"feedback": data["fair_alpha"], "rationale": 1 - data["fair_alpha"]}
        if data.get("merge"):
            config["merge"] = True
        if data["training_set"].is_preference:  # preference pairs: whatever the preset trains, this is DPO
            config["objective"] = config["target"] = "dpo"
        return config
