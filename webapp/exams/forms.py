"""The exam launch form: student, datasets, mode (plain, SALAM, LbT M1) and each mode's options."""

from __future__ import annotations

from django import forms

from pipeline.exams.config import RETRIEVE_FROM
from pipeline.exams.retrieval import SALAM_THRESHOLD, SALAM_TOP_K
from pipeline.exams.selection import RELATED_RULES
from webapp.datasets.models import Dataset
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.forms import GatherForm
from webapp.runs.models import Run, RunKind

MODES = [("plain", "Plain: the question alone"),
         ("salam", "SALAM: the study assistant's guideline and similar past cases before the question"),
         ("lbt", "LbT M1: teacher rationales, scored by how well the student does with them")]
SOURCES = {"mistakes": "Past mistakes", "correct": "Past correct answers", "both": "Both", "none": "None (guideline only)"}
RULES = {"similar": "Most similar questions (MiniLM)", "same_task": "Same task, drawn at random",
         "same_group": "Same metadata group"}
_SAME_AS_GATHER = GatherForm.base_fields  # prompt, decoding and sampling fields mean what they mean in a gather run


class ExamForm(forms.Form):
    name = forms.CharField(required=False, max_length=200, help_text="Empty: named after the mode, model and datasets.")
    student = forms.ModelChoiceField(queryset=ModelEndpoint.objects.filter(is_active=True, as_student=True))
    datasets = forms.ModelMultipleChoiceField(queryset=Dataset.objects.all(), widget=forms.CheckboxSelectMultiple)
    split = forms.ChoiceField(choices=[("test", "Test"), ("train", "Train"), ("all", "All")], initial="test")
    tasks = _SAME_AS_GATHER["tasks"]
    sample_size = _SAME_AS_GATHER["sample_size"]
    sample_seed = _SAME_AS_GATHER["sample_seed"]
    mode = forms.ChoiceField(choices=MODES, initial="plain")
    samples_per_problem = _SAME_AS_GATHER["samples_per_problem"]
    majority_vote = forms.BooleanField(required=False, initial=True, help_text="Several samples: the most frequent answer counts.")
    style = _SAME_AS_GATHER["style"]
    preset = _SAME_AS_GATHER["preset"]
    k_shots = _SAME_AS_GATHER["k_shots"]
    temperature = _SAME_AS_GATHER["temperature"]
    max_tokens = _SAME_AS_GATHER["max_tokens"]
    seed = _SAME_AS_GATHER["seed"]
    scorer = _SAME_AS_GATHER["scorer"]
    use_cache = _SAME_AS_GATHER["use_cache"]
    exclude_contaminated = forms.BooleanField(required=False, help_text="Leave out problems found in the checkpoint's training data.")
    near_duplicates = forms.BooleanField(required=False, initial=True,
                                         help_text="Also look for near duplicates by embedding (slower), not only exact copies.")
    assistant = forms.ModelChoiceField(required=False, queryset=ModelEndpoint.objects.filter(is_active=True, as_assistant=True),
                                       help_text="The study assistant that writes a guideline for each question.")
    guideline = forms.BooleanField(required=False, initial=True, help_text="Off: retrieval only (SALAM's ablation).")
    retrieve_from = forms.ChoiceField(required=False, choices=[(s, SOURCES[s]) for s in RETRIEVE_FROM], initial="mistakes")
    top_k = forms.IntegerField(required=False, min_value=1, max_value=20, initial=SALAM_TOP_K, help_text="At most this many past cases.")
    threshold = forms.FloatField(required=False, min_value=0, max_value=1, initial=SALAM_THRESHOLD, help_text="Cosine similarity at least this.")
    teacher_run = forms.ModelChoiceField(required=False, queryset=Run.objects.filter(kind=RunKind.TEACH, config__method="lbt"),
                                         help_text="The LbT teacher run whose rationales are examined.")
    related_rule = forms.ChoiceField(required=False, choices=[(r, RULES[r]) for r in RELATED_RULES], initial="similar")
    exam_problems = forms.IntegerField(required=False, min_value=1, max_value=16, initial=3, help_text="Related train problems per rationale.")
    repetitions = forms.IntegerField(required=False, min_value=1, max_value=16, initial=3, help_text="Answers per related problem.")
    group_key = forms.CharField(required=False, max_length=100, help_text="Same metadata group: the key that groups problems.")

    COMMON = ("name,student,datasets,split,tasks,sample_size,sample_seed,mode,samples_per_problem,majority_vote,style,preset,"
              "k_shots,temperature,max_tokens,seed,scorer,use_cache,exclude_contaminated,near_duplicates")
    SALAM = "assistant,guideline,retrieve_from,top_k,threshold"
    LBT = "teacher_run,related_rule,exam_problems,repetitions,group_key"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from pipeline.prompts import PRESETS

        self.fields["preset"].choices = [(name, f"{name} — {preset.description}") for name, preset in PRESETS.items()]
        students = self.fields["student"].queryset
        if not self.initial.get("student") and students.count() == 1:  # the only choice: nothing to pick
            self.initial["student"] = students.first().pk

    def config(self) -> dict:
        """The exam configuration as plain JSON; the service validates it in depth."""
        data = self.cleaned_data
        mode = data["mode"]
        decoding = {"temperature": data["temperature"], "max_tokens": data["max_tokens"]}
        if data.get("seed") is not None:
            decoding["seed"] = data["seed"]
        config = {
            "student_endpoint_id": data["student"].pk, "dataset_ids": [d.pk for d in data["datasets"]], "mode": mode,
            "split": data["split"], "tasks": [t.strip() for t in data["tasks"].split(",") if t.strip()],
            "sample_size": data["sample_size"], "sample_seed": data["sample_seed"],
            "samples_per_problem": 1 if mode == "lbt" else data["samples_per_problem"], "majority_vote": data["majority_vote"],
            "prompt": {"style": data["style"], "preset": data["preset"], "k_shots": data["k_shots"]},
            "decoding": decoding, "scorer": data["scorer"], "use_cache": data["use_cache"],
            "exclude_contaminated": data["exclude_contaminated"], "near_duplicates": data["near_duplicates"],
        }
        if mode == "salam":
            config["salam"] = {"assistant_endpoint_id": data["assistant"].pk if data.get("assistant") else None,
                               "guideline": data["guideline"], "retrieve_from": data["retrieve_from"] or "mistakes",
                               "top_k": _given(data["top_k"], SALAM_TOP_K), "threshold": _given(data["threshold"], SALAM_THRESHOLD)}
        if mode == "lbt":
            config["lbt"] = {"related_rule": data["related_rule"] or "similar", "exam_problems": _given(data["exam_problems"], 3),
                             "repetitions": _given(data["repetitions"], 3)}
            if data.get("teacher_run"):
                config["lbt"]["teacher_run_id"] = data["teacher_run"].pk
            if data["related_rule"] == "same_group":
                config["lbt"]["group_key"] = data["group_key"]
        return config


def _given(value, default):
    """A mode's option left empty takes its default (the fields of the other modes are hidden, not required)."""
    return default if value is None else value


class CompareForm(forms.Form):
    before = forms.ModelChoiceField(queryset=Run.objects.filter(kind=RunKind.EXAM), help_text="The exam to compare against.")
    after = forms.ModelChoiceField(queryset=Run.objects.filter(kind=RunKind.EXAM), help_text="The exam after the change.")
