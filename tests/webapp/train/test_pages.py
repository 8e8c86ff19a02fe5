"""Train pages and API: build a set, preview it as the model sees it, launch, watch the loss, serve."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from tests.gpu_worker.tiny import build_tiny_model
from tests.webapp.review.conftest import make_feedback
from tests.webapp.train.conftest import approved_queue
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.runs.models import Run
from webapp.train.models import Checkpoint, TrainingSet, TrainMetric


@pytest.fixture
def queue(annotator):
    return approved_queue(make_feedback(5), annotator)


@pytest.fixture
def tiny_base(db, tmp_path):
    folder = build_tiny_model(tmp_path / "tiny")
    return ModelEndpoint.objects.create(name="tiny local", kind=EndpointKind.LOCAL, base_url="http://127.0.0.1:9/v1",
                                        model_name="tiny", base_weights=str(folder))


def test_building_a_set_from_the_form_redirects_to_its_preview(researcher_client, queue):
    response = researcher_client.post(reverse("train:set_new"), {
        "name": "lema set", "source": "queue", "queue": queue.pk, "target": "lema_student", "rule": "majority",
        "validation_share": 0.2, "seed": 0})
    built = TrainingSet.objects.get(name="lema set")
    assert response.status_code == 302 and response["Location"] == built.get_absolute_url()
    assert built.counts["train"] + built.counts["validation"] == 5


def test_the_form_says_what_is_missing(researcher_client, queue):
    response = researcher_client.post(reverse("train:set_new"), {"name": "x", "source": "queue", "validation_share": 0.1,
                                                                 "seed": 0})
    assert response.status_code == 400 and b"Needed for this source" in response.content


def test_a_refused_build_is_shown_on_the_form(researcher_client, queue):
    response = researcher_client.post(reverse("train:set_new"), {
        "name": "s", "source": "queue", "queue": queue.pk, "target": "salam_assistant", "validation_share": 0.1, "seed": 0})
    assert response.status_code == 400 and b"no approved salam feedback" in response.content


def test_an_uploaded_file_with_a_bad_line_is_refused_with_its_number(researcher_client, db):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("pairs.jsonl", b'{"prompt": "a", "completion": "b"}\n{broken\n')
    response = researcher_client.post(reverse("train:set_new"), {"name": "f", "source": "file", "file": upload,
                                                                 "validation_share": 0, "seed": 0})
    assert response.status_code == 400 and b"line 2" in response.content
    assert not TrainingSet.objects.exists()


def test_the_preview_renders_examples_with_the_chat_template_and_counts_truncation(researcher_client, queue, tiny_base):
    from webapp.train.sets import training_set_from_queue

    built = training_set_from_queue(name="p", target="lema_student", queue=queue, validation_share=0)
    response = researcher_client.get(built.get_absolute_url(), {"base": tiny_base.pk, "max_length": 64})
    page = response.content.decode()
    assert response.status_code == 200
    assert "with the chat template applied" in page and 'class="target"' in page
    assert "5 examples longer than 64 tokens" in page  # byte-level tokens: every LEMA prompt is longer
    assert page.count('class="bar-row"') >= 2


def test_the_launch_form_refuses_qlora_on_this_machine(researcher_client, queue, tiny_base):
    from webapp.train.sets import training_set_from_queue

    built = training_set_from_queue(name="p", target="lema_student", queue=queue)
    response = researcher_client.post(reverse("train:new"), {
        "training_set": built.pk, "base": tiny_base.pk, "preset": "cpu-lora-tiny", "method": "qlora",
        "auto_register": "on"})
    assert response.status_code == 400 and b"QLoRA" in response.content
    assert not Run.objects.filter(kind="train").exists()


def test_launching_from_the_form_queues_a_run_with_the_preset_and_overrides(researcher_client, queue, tiny_base):
    from webapp.train.sets import training_set_from_queue

    built = training_set_from_queue(name="p", target="lema_student", queue=queue)
    response = researcher_client.post(reverse("train:new"), {
        "training_set": built.pk, "base": tiny_base.pk, "preset": "cpu-lora-tiny", "max_steps": 7, "lora_r": 4})
    run = Run.objects.get(kind="train")
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert run.config["train"]["max_steps"] == 7 and run.config["train"]["lora"]["r"] == 4
    assert run.config["train"]["learning_rate"] == 1e-2  # the preset's
    assert run.config["auto_register"] is False  # the unchecked box


def test_the_run_page_draws_the_loss_curve_and_lists_checkpoints(researcher_client, db):
    from webapp.train.runs import training_dir

    run = Run.objects.create(kind="train", name="t", config={"train": {}}, status="running")
    training_dir(run.pk).mkdir(parents=True, exist_ok=True)
    (training_dir(run.pk) / "train.log").write_text("step 30 <b>loss</b> 0.5\n")
    for step, loss in ((10, 2.0), (20, 1.0), (30, 0.5)):
        TrainMetric.objects.create(run=run, step=step, loss=loss, learning_rate=1e-3)
    Checkpoint.objects.create(run=run, step=20, path="/runs/checkpoint-20")
    page = researcher_client.get(run.get_absolute_url()).content.decode()
    assert '<polyline class="train-loss"' in page and "now <span id=\"last-loss\">0.5000</span>" in page
    assert "/runs/checkpoint-20" in page and "resumable" in page
    assert "step 30 &lt;b&gt;loss&lt;/b&gt; 0.5" in page  # the worker's log, escaped


def test_the_api_builds_a_set_lists_its_examples_and_launches(researcher_client, queue, tiny_base):
    response = researcher_client.post("/api/training-sets/", {"name": "api set", "queue": queue.pk,
                                                              "target": "lema_student", "validation_share": 0},
                                      content_type="application/json")
    assert response.status_code == 201, response.content
    set_id = response.json()["id"]
    examples = researcher_client.get(f"/api/training-sets/{set_id}/examples/").json()
    assert examples["count"] == 5 and examples["results"][0]["feedback"] is not None
    launched = researcher_client.post("/api/train-runs/", {"training_set": set_id, "base": tiny_base.pk,
                                                           "preset": "cpu-lora-tiny", "config": {"max_steps": 5}},
                                      content_type="application/json")
    assert launched.status_code == 201, launched.content
    assert launched.json()["kind"] == "train"
    refused = researcher_client.post("/api/train-runs/", {"training_set": set_id, "base": tiny_base.pk,
                                                          "config": {"method": "qlora"}}, content_type="application/json")
    assert refused.status_code == 400 and "QLoRA" in refused.json()["config"][0]


def test_the_metrics_api_returns_every_step(researcher_client, db):
    run = Run.objects.create(kind="train", name="t", config={"train": {}})
    TrainMetric.objects.create(run=run, step=5, loss=1.25)
    assert researcher_client.get(f"/api/train-runs/{run.pk}/metrics/").json() == [
        {"step": 5, "epoch": None, "loss": 1.25, "eval_loss": None, "learning_rate": None, "grad_norm": None,
         "tokens_per_s": None, "samples_per_s": None}]


def test_the_train_command_launches_from_a_json_file(db, queue, tiny_base, tmp_path):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    config = tmp_path / "run.json"
    config.write_text(json.dumps({"name": "cli run", "build": {"queue": queue.pk, "target": "lema_student"},
                                  "base": "tiny local", "preset": "cpu-lora-tiny", "config": {"max_steps": 3}}))
    call_command("train", str(config))
    run = Run.objects.get(kind="train", name="cli run")
    assert run.config["train"]["max_steps"] == 3
    config.write_text(json.dumps({"training_set": 999, "base": "tiny local"}))
    with pytest.raises(CommandError, match="no training set #999"):
        call_command("train", str(config))
    config.write_text(json.dumps({"training_set": 1, "bogus": True}))
    with pytest.raises(CommandError, match="unknown keys"):
        call_command("train", str(config))


def test_a_preference_set_launches_as_a_dpo_run_from_the_form(researcher_client, queue, tiny_base):
    from webapp.train.sets import training_set_from_queue

    built = training_set_from_queue(name="pairs", target="dpo", queue=queue)
    response = researcher_client.post(reverse("train:new"), {
        "training_set": built.pk, "base": tiny_base.pk, "preset": "cpu-lora-tiny", "max_steps": 3})
    run = Run.objects.get(kind="train")
    assert response.status_code == 302 and response["Location"] == run.get_absolute_url()
    assert (run.config["train"]["objective"], run.config["train"]["target"]) == ("dpo", "dpo")
