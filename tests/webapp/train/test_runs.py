"""Training runs on the web side: launch checks, the spec sent to the GPU worker, events back, cancel."""

from __future__ import annotations

import json

import pytest

from tests.webapp.train.conftest import approved_queue
from tests.webapp.review.conftest import make_feedback
from webapp.runs.models import Run, RunStatus
from webapp.runs.services import run_cancel, run_requeue
from webapp.train.models import Checkpoint, TrainingSet, TrainMetric
from webapp.train.runs import TrainLaunchError, train_event, train_launch, train_spec, training_dir
from webapp.train.sets import training_set_from_queue

LORA = {"method": "lora", "max_steps": 20, "batch_size": 2}


@pytest.fixture
def training_set(db, annotator):
    queue = approved_queue(make_feedback(6), annotator)
    return training_set_from_queue(name="lema set", target="lema_student", queue=queue)


@pytest.fixture
def run(training_set, base_endpoint, researcher):
    return train_launch(user=researcher, training_set=training_set, base=base_endpoint, config=LORA)


def test_launch_freezes_the_config_with_the_base_weights(run, training_set, base_endpoint):
    assert run.kind == "train" and run.status == RunStatus.QUEUED
    assert run.config["training_set"] == training_set.pk and run.config["base_endpoint"] == base_endpoint.pk
    assert run.config["train"]["base_model"] == base_endpoint.base_weights
    assert run.config["train"]["max_steps"] == 20


@pytest.mark.parametrize("config, message", [
    ({"method": "qlora"}, "QLoRA"),  # no CUDA device here
    ({"method": "lora", "learning_rate": -1}, "learning_rate"),
    ({"method": "lora", "no_such_setting": 1}, "no_such_setting"),
    ({"method": "lora", "objective": "dpo"}, "sft"),  # an SFT set cannot train DPO
])
def test_launch_refuses_what_cannot_run_before_anything_starts(training_set, base_endpoint, researcher, config, message):
    with pytest.raises(TrainLaunchError, match=message):
        train_launch(user=researcher, training_set=training_set, base=base_endpoint, config=config)
    assert not Run.objects.filter(kind="train").exists()


def test_launch_refuses_a_remote_model(training_set, researcher):
    from webapp.endpoints.models import ModelEndpoint

    remote = ModelEndpoint.objects.create(name="api", base_url="https://example.invalid/v1", model_name="gpt")
    with pytest.raises(TrainLaunchError, match="not a local model"):
        train_launch(user=researcher, training_set=training_set, base=remote, config=LORA)


def test_the_spec_names_the_sets_files_and_the_runs_folder(run, training_set):
    spec = train_spec(run)
    assert spec["train_file"] == training_set.train_file
    assert spec["output_dir"] == str(training_dir(run.pk))
    assert spec["reply_to"] == {"task": "webapp.train.tasks.train_event", "queue": "default"}
    json.dumps(spec)  # it travels as JSON


def test_started_then_metrics_move_the_run_and_draw_the_curve(run):
    train_event(run_id=run.pk, event={"type": "started", "total_steps": 20, "examples": 6, "resumed_from": None})
    for step, loss in ((5, 2.0), (10, 1.5), (10, 1.5), (15, 0.5)):  # step 10 arrives twice
        train_event(run_id=run.pk, event={"type": "metrics", "step": step, "loss": loss, "learning_rate": 1e-3})
    train_event(run_id=run.pk, event={"type": "metrics", "step": 15, "eval_loss": 0.7})  # the eval half of step 15
    run.refresh_from_db()
    assert run.status == RunStatus.RUNNING and run.progress_total == 20 and run.progress_done == 15
    assert list(TrainMetric.objects.filter(run=run).values_list("step", "loss", "eval_loss")) == [
        (5, 2.0, None), (10, 1.5, None), (15, 0.5, 0.7)]


def test_bad_numbers_and_unknown_events_are_ignored(run):
    train_event(run_id=run.pk, event={"type": "metrics", "step": 3, "loss": float("nan"), "learning_rate": "high"})
    train_event(run_id=run.pk, event={"type": "teleport"})
    train_event(run_id=run.pk, event=["not", "a", "dict"])
    assert list(TrainMetric.objects.filter(run=run).values_list("loss", "learning_rate")) == [(None, None)]


def _manifest(run, tmp_path, **overrides):
    adapter = tmp_path / "final" / "adapter"
    adapter.mkdir(parents=True)
    manifest = {"run_id": run.pk, "kind": "adapter", "adapter": str(adapter), "merged": None, "model": None,
                "base_model": "tiny", "config": run.config["train"], "metrics": {"train_loss": 0.1, "steps": 20}} | overrides
    path = tmp_path / "final" / "manifest.json"
    path.write_text(json.dumps(manifest))
    return path


def test_done_registers_the_final_checkpoint_from_the_manifest(run, tmp_path):
    train_event(run_id=run.pk, event={"type": "started", "total_steps": 20})
    train_event(run_id=run.pk, event={"type": "checkpoint", "step": 10, "path": str(tmp_path / "checkpoint-10")})
    manifest = _manifest(run, tmp_path)
    train_event(run_id=run.pk, event={"type": "done", "status": "succeeded", "manifest": str(manifest), "error": ""})
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    final = Checkpoint.objects.get(run=run, is_final=True)
    assert final.step == 20 and final.kind == "adapter" and final.metrics["train_loss"] == 0.1
    assert Checkpoint.objects.filter(run=run, is_final=False, step=10).exists()
    # the model server at 127.0.0.1:9 is not there: the run still succeeded, the log says why it is not served
    assert final.endpoint is None
    assert run.events.filter(level="warning", message__contains="Not served yet").exists()


def test_done_without_a_usable_manifest_fails_and_registers_nothing(run, tmp_path):
    train_event(run_id=run.pk, event={"type": "started", "total_steps": 20})
    train_event(run_id=run.pk, event={"type": "done", "status": "succeeded", "manifest": str(tmp_path / "missing.json")})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "manifest" in run.error
    assert not Checkpoint.objects.filter(run=run, is_final=True).exists()


def test_a_failure_before_starting_fails_the_run_with_its_reason(run):
    train_event(run_id=run.pk, event={"type": "done", "status": "failed", "error": "line 3 of train.jsonl is not JSON"})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "line 3" in run.error


def test_events_after_the_end_change_nothing(run):
    train_event(run_id=run.pk, event={"type": "started", "total_steps": 20})
    train_event(run_id=run.pk, event={"type": "done", "status": "cancelled", "last_checkpoint": "/x/checkpoint-5"})
    train_event(run_id=run.pk, event={"type": "metrics", "step": 7, "loss": 1.0})
    train_event(run_id=run.pk, event={"type": "done", "status": "failed", "error": "late"})
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED and not TrainMetric.objects.filter(run=run).exists()


def test_cancel_leaves_a_stop_file_for_the_worker_and_resume_removes_it(run, settings, tmp_path, monkeypatch):
    settings.ERRATA_ARTIFACTS_DIR = tmp_path
    train_event(run_id=run.pk, event={"type": "started", "total_steps": 20})
    run_cancel(run=run)
    assert (training_dir(run.pk) / "STOP").exists()
    train_event(run_id=run.pk, event={"type": "done", "status": "cancelled", "last_checkpoint": "/x/checkpoint-5"})
    run.refresh_from_db()
    requeued = run_requeue(run=run)
    assert requeued.status == RunStatus.QUEUED
    from webapp.celery import app
    from webapp.train.runs import train_dispatch

    sent = []  # not into the shared broker: a later test's gpu worker would take the job
    monkeypatch.setattr(app, "send_task", lambda name, args, queue: sent.append((name, args, queue)))
    train_dispatch(run_id=run.pk)
    assert not (training_dir(run.pk) / "STOP").exists()
    assert sent == [("gpu_worker.train", [train_spec(Run.objects.get(pk=run.pk))], "gpu")]
    assert Run.objects.get(pk=run.pk).phase == "waiting for a GPU worker"


def test_training_set_counts_are_checked_at_launch(training_set, base_endpoint, researcher):
    TrainingSet.objects.filter(pk=training_set.pk).update(counts={"train": 0, "validation": 0})
    training_set.refresh_from_db()
    with pytest.raises(TrainLaunchError, match="no training examples"):
        train_launch(user=researcher, training_set=training_set, base=base_endpoint, config=LORA)
