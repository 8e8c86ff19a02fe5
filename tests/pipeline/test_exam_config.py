"""Exam configuration: defaults, each mode's options, and errors that name the setting."""

from __future__ import annotations

import json
import re

import pytest

from pipeline.exams.config import ExamConfig, ExamConfigError, LbtOptions, SalamOptions, parse_exam_config
from pipeline.prompts import PromptConfig

BASE = {"student_endpoint_id": 1, "dataset_ids": [4]}


def parse(**settings) -> ExamConfig:
    return parse_exam_config({**BASE, **settings})


def test_a_plain_exam_needs_only_a_student_and_a_dataset():
    config = parse()
    assert config == ExamConfig(student_endpoint_id=1, dataset_ids=(4,))
    assert (config.mode, config.split, config.samples_per_problem, config.majority_vote) == ("plain", "test", 1, True)
    assert (config.salam, config.lbt, config.prompt) == (None, None, PromptConfig())


def test_salam_defaults_are_salams_and_the_config_survives_a_json_round_trip():
    config = parse(mode="salam", salam={"assistant_endpoint_id": 9}, samples_per_problem=5, tasks=["age"],
                   decoding={"temperature": 0.7}, prompt={"preset": "salam"}, scorer="salam_mc")
    assert config.salam == SalamOptions(assistant_endpoint_id=9, guideline=True, retrieve_from="mistakes",
                                        top_k=3, threshold=0.9)
    assert parse_exam_config(json.loads(json.dumps(config.as_json()))) == config


VARIANTS = [
    ({"assistant_endpoint_id": 9}, "guideline and retrieval from mistakes"),
    ({"assistant_endpoint_id": 9, "retrieve_from": "none"}, "guideline only"),
    ({"guideline": False, "retrieve_from": "correct"}, "retrieval from correct only"),
    ({"guideline": False, "retrieve_from": "both", "top_k": 10, "threshold": 0}, "retrieval from both only"),
]


@pytest.mark.parametrize("salam,variant", VARIANTS)
def test_salams_ablations(salam, variant):
    assert parse(mode="salam", salam=salam).salam.variant == variant


def test_lbt_defaults_follow_lbts_math_exams():
    config = parse(mode="lbt", lbt={"teacher_run_id": 3}, prompt={"preset": "lbt"})
    assert config.lbt == LbtOptions(teacher_run_id=3, related_rule="similar", exam_problems=3, repetitions=3)
    grouped = parse(mode="lbt", lbt={"teacher_run_id": 3, "related_rule": "same_group", "group_key": "unique_id"})
    assert grouped.lbt.group_key == "unique_id"
    assert parse_exam_config(json.loads(json.dumps(grouped.as_json()))) == grouped


ERRORS = [
    # settings, a fragment of the message
    ({"student_endpoint_id": 0}, "student_endpoint_id must be a whole number from 1"),
    ({"dataset_ids": []}, "dataset_ids must be a non-empty list"),
    ({"dataset_ids": [4, 4]}, "dataset_ids lists a dataset twice"),
    ({"dataset_ids": ["4"]}, "dataset_ids must hold positive whole numbers"),
    ({"colour": "red"}, "unknown exam setting 'colour'"),
    ({"mode": "quiz"}, "mode must be one of plain, salam, lbt"),
    ({"split": "dev"}, "split must be one of test, train, all"),
    ({"tasks": "age"}, "tasks must be a list"),
    ({"samples_per_problem": 0}, "samples_per_problem must be a whole number from 1 to 64"),
    ({"majority_vote": "yes"}, "majority_vote must be true or false"),
    ({"decoding": {"temperature": 5}}, "decoding: temperature must be in"),
    ({"decoding": {"n": 4}}, "decoding.n: set samples_per_problem"),
    ({"prompt": {"style": "essay"}}, "prompt: unknown prompt style 'essay'"),
    ({"prompt": {"shots": 2}}, "unknown prompt setting 'shots'"),
    ({"scorer": "vibes"}, "scorer must be empty"),
    ({"execution": "carrier pigeon"}, "execution must be one of"),
    ({"salam": {"top_k": 3}}, "salam settings are only used when mode is salam, not plain"),
    ({"lbt": {"teacher_run_id": 3}}, "lbt settings are only used when mode is lbt"),
    ({"mode": "salam"}, "salam.assistant_endpoint_id: the guideline comes from a study assistant"),
    ({"mode": "salam", "salam": {"guideline": False, "retrieve_from": "none"}}, "nothing is shown; use mode plain"),
    ({"mode": "salam", "salam": {"guideline": False, "top_k": 0}}, "salam.top_k must be a whole number from 1 to 20"),
    ({"mode": "salam", "salam": {"guideline": False, "threshold": 1.5}}, "salam.threshold must be a cosine"),
    ({"mode": "salam", "salam": {"guideline": False, "threshold": True}}, "salam.threshold must be a cosine"),
    ({"mode": "salam", "salam": {"guideline": False, "retrieve_from": "feedback"}}, "salam.retrieve_from must be"),
    ({"mode": "salam", "salam": {"assistant_endpoint_id": "x"}}, "salam.assistant_endpoint_id must be a whole"),
    ({"mode": "salam", "salam": {"topk": 3}}, "unknown salam setting 'topk'"),
    ({"mode": "salam", "salam": {"guideline": False}, "prompt": {"style": "few_shot", "k_shots": 2}},
     "prompt.style: a salam exam puts its own material before the question"),
    ({"mode": "lbt"}, "lbt.teacher_run_id: choose the LbT teacher run"),
    ({"mode": "lbt", "lbt": {"teacher_run_id": 3, "related_rule": "random"}}, "lbt.related_rule must be one of"),
    ({"mode": "lbt", "lbt": {"teacher_run_id": 3, "related_rule": "same_group"}}, "lbt.group_key is needed by"),
    ({"mode": "lbt", "lbt": {"teacher_run_id": 3, "group_key": "unique_id"}}, "lbt.group_key is needed by"),
    ({"mode": "lbt", "lbt": {"teacher_run_id": 3, "repetitions": 0}}, "lbt.repetitions must be a whole number"),
    ({"mode": "lbt", "lbt": {"teacher_run_id": 3}, "samples_per_problem": 4}, "leave samples_per_problem at 1"),
]


@pytest.mark.parametrize("settings,message", ERRORS)
def test_errors_name_the_setting(settings, message):
    with pytest.raises(ExamConfigError, match=re.escape(message)):
        parse(**settings)


def test_the_configuration_must_be_an_object():
    with pytest.raises(ExamConfigError, match="exam must be a JSON object"):
        parse_exam_config(["plain"])
