"""Training runs on the web side: launch, hand the job to a GPU worker, take its events, cancel, resume.

The GPU worker never touches the database. ``train_dispatch`` sends it a JSON spec on the `gpu` queue;
everything it does comes back as events (``train_event``), which may arrive twice or out of order:
metrics are keyed by step, checkpoints by (step, final), and a finished run ignores late news.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from pipeline.training.config import TrainConfig, TrainConfigError, config_from_dict, config_refusals
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.runs.dispatch import run_enqueue
from webapp.runs.models import FINISHED, Run, RunEvent, RunKind, RunStatus
from webapp.runs.services import run_create, run_finish, run_log, run_progress
from webapp.train.models import Checkpoint, TrainingSet, TrainMetric

logger = logging.getLogger(__name__)

GPU_TASK = "gpu_worker.train"
EVENT_TASK = "webapp.train.tasks.train_event"
METRIC_FIELDS = ("epoch", "loss", "eval_loss", "learning_rate", "grad_norm", "tokens_per_s", "samples_per_s")


class TrainLaunchError(ValueError):
    """A training run that cannot start; the message says why in plain words."""


def training_dir(run_id: int) -> Path:
    """Where a run's checkpoints, final weights, manifest and log live (shared with the GPU worker)."""
    return Path(settings.ERRATA_ARTIFACTS_DIR) / "train" / f"run-{run_id}"


def base_weights(endpoint: ModelEndpoint) -> str:
    """The weights a training run starts from: a local endpoint's base weights."""
    if endpoint.kind != EndpointKind.LOCAL or not endpoint.base_weights:
        raise TrainLaunchError(f"{endpoint.name} is not a local model with base weights: training needs the weights "
                               "on disk (a Hugging Face folder or 'packaged:smollm2')")
    if endpoint.gguf_file:
        raise TrainLaunchError(f"{endpoint.name} is a GGUF file; convert it to a Hugging Face folder to train it")
    return endpoint.base_weights


def train_launch(*, user, training_set: TrainingSet, base: ModelEndpoint, config: dict, name: str = "",
                 auto_register: bool = True) -> Run:
    """Check the configuration against the data and the machines, then queue the run."""
    try:
        checked = config_from_dict({**config, "base_model": base_weights(base)})
    except TrainConfigError as error:
        raise TrainLaunchError(str(error)) from None
    refusals = launch_refusals(checked, training_set)
    if refusals:
        raise TrainLaunchError(" ".join(refusals))
    frozen = {"training_set": training_set.pk, "base_endpoint": base.pk, "train": checked.to_dict(),
              "auto_register": auto_register}
    with transaction.atomic():
        run = run_create(kind=RunKind.TRAIN, name=name or f"{checked.method} of {base.name} on {training_set.name}",
                         config=frozen, user=user)
        run_enqueue(run)
    return run


def launch_refusals(config: TrainConfig, training_set: TrainingSet) -> list[str]:
    """Why this configuration cannot train on this set here (empty when it can)."""
    refusals = list(config_refusals(config, cuda_devices=settings.ERRATA_TRAIN_CUDA_DEVICES))
    if (config.objective == "dpo") != training_set.is_preference:
        refusals.append(f"the {training_set.get_target_display()} set needs objective "
                        f"{'dpo' if training_set.is_preference else 'sft'}")
    if not training_set.counts.get("train"):
        refusals.append(f"the training set {training_set.name!r} has no training examples")
    return refusals


def train_spec(run: Run) -> dict:
    """The JSON job a GPU worker runs (see gpu_worker.training)."""
    training_set = TrainingSet.objects.get(pk=run.config["training_set"])
    return {
        "run_id": run.pk, "config": run.config["train"], "train_file": training_set.train_file,
        "eval_file": training_set.validation_file or None, "output_dir": str(training_dir(run.pk)),
        "reply_to": {"task": EVENT_TASK, "queue": "default"},
    }


def train_dispatch(*, run_id: int) -> None:
    """Send a queued run to the `gpu` queue; it turns running when a GPU worker reports that it started."""
    from webapp.celery import app

    run = Run.objects.get(pk=run_id)
    if run.status != RunStatus.QUEUED:
        return
    output = training_dir(run.pk)
    output.mkdir(parents=True, exist_ok=True)
    (output / "STOP").unlink(missing_ok=True)  # a resumed run must not stop at once
    run_progress(run_id=run.pk, phase="waiting for a GPU worker")
    app.send_task(GPU_TASK, args=[train_spec(run)], queue="gpu")
    run_log(run_id=run.pk, message="Sent to the gpu queue.")


def train_request_stop(run: Run) -> None:
    """Ask the GPU worker to save a checkpoint and stop at the next step (it watches for this file)."""
    output = training_dir(run.pk)
    output.mkdir(parents=True, exist_ok=True)
    (output / "STOP").touch()


# --- Events from the GPU worker -----------------------------------------------------------------


def train_event(*, run_id: int, event: dict) -> None:
    """Record one event; events of a run that has finished (or was never launched) change nothing."""
    run = Run.objects.filter(pk=run_id, kind=RunKind.TRAIN).first()
    if run is None or not isinstance(event, dict):
        logger.warning("ignored a training event for run %s: %r", run_id, event)
        return
    handler = EVENT_HANDLERS.get(event.get("type"))
    if handler is None:
        logger.warning("ignored a training event of unknown type for run %s: %r", run_id, event)
        return
    if run.status in FINISHED and event.get("type") != "done":
        return
    handler(run, event)


def _started(run: Run, event: dict) -> None:
    now = timezone.now()
    Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(status=RunStatus.RUNNING, started_at=now,
                                                                  heartbeat_at=now, error="", finished_at=None)
    resumed = event.get("resumed_from")
    run_progress(run_id=run.pk, total=_int(event.get("total_steps")), phase="training")
    run_log(run_id=run.pk, message=(f"Training started on {event.get('examples', '?')} examples, "
                                    f"{event.get('total_steps', '?')} steps"
                                    + (f", resumed from step {resumed}." if resumed else ".")))


def _metrics(run: Run, event: dict) -> None:
    step = _int(event.get("step"))
    if step is None:
        return
    values = {name: _float(event.get(name)) for name in METRIC_FIELDS}
    current = TrainMetric.objects.filter(run=run, step=step).first()
    if current is not None:  # an eval report and a train report for the same step: keep both halves
        values = {name: value if value is not None else getattr(current, name) for name, value in values.items()}
    TrainMetric.objects.update_or_create(run=run, step=step, defaults=values)
    if step > run.progress_done:
        run_progress(run_id=run.pk, done=step)


def _log(run: Run, event: dict) -> None:
    level = event.get("level") if event.get("level") in RunEvent.Level.values else RunEvent.Level.INFO
    run_log(run_id=run.pk, message=str(event.get("message", "")), level=level)


def _checkpoint(run: Run, event: dict) -> None:
    step, path = _int(event.get("step")), event.get("path")
    if step is None or not isinstance(path, str):
        return
    Checkpoint.objects.get_or_create(run=run, step=step, is_final=False, defaults={"path": path})
    # The worker keeps only its newest checkpoints: forget the ones whose folder it has removed.
    for old in Checkpoint.objects.filter(run=run, is_final=False, step__lt=step):
        if not Path(old.path).exists():
            old.delete()
    run_log(run_id=run.pk, message=f"Checkpoint saved at step {step}.")


def _done(run: Run, event: dict) -> None:
    if run.status in FINISHED:
        return
    status = event.get("status")
    if status == RunStatus.SUCCEEDED:
        try:
            checkpoint = checkpoint_from_manifest(run, event.get("manifest"))
        except (OSError, ValueError, KeyError) as error:
            _finish(run, RunStatus.FAILED, f"the worker said it finished, but its manifest is unusable: {error}")
            return
        _finish(run, RunStatus.SUCCEEDED)
        if run.config.get("auto_register"):
            _register_quietly(checkpoint)
        return
    if status == RunStatus.CANCELLED:
        last = event.get("last_checkpoint")
        run_log(run_id=run.pk, message=f"Stopped; resume continues from {last}." if last else "Stopped before any checkpoint.")
        _finish(run, RunStatus.CANCELLED)
        return
    _finish(run, RunStatus.FAILED, str(event.get("error") or "the training process failed without saying why"))


def _finish(run: Run, status: str, error: str = "") -> None:
    Run.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(status=RunStatus.RUNNING)  # failed before starting
    run_finish(run_id=run.pk, status=status, error=error)


EVENT_HANDLERS = {"started": _started, "metrics": _metrics, "log": _log, "checkpoint": _checkpoint, "done": _done}


def checkpoint_from_manifest(run: Run, manifest_path) -> Checkpoint:
    """The final checkpoint, registered only from a complete manifest (the worker writes it last)."""
    if not isinstance(manifest_path, str):
        raise ValueError("no manifest path in the done event")
    manifest = json.loads(Path(manifest_path).read_text())
    kind = Checkpoint.Kind.ADAPTER if manifest.get("kind") == "adapter" else Checkpoint.Kind.MODEL
    path = manifest["adapter"] if kind == Checkpoint.Kind.ADAPTER else manifest["model"]
    if not path or not Path(path).is_dir():
        raise ValueError(f"the saved weights {path!r} are missing")
    metrics = manifest.get("metrics") or {}
    checkpoint, _ = Checkpoint.objects.update_or_create(
        run=run, step=_int(metrics.get("steps")) or run.progress_done, is_final=True,
        defaults={"path": path, "kind": kind, "merged_path": manifest.get("merged") or "", "metrics": metrics,
                  "base_model": manifest.get("base_model", ""), "config": manifest.get("config") or run.config["train"]})
    return checkpoint


def _register_quietly(checkpoint: Checkpoint) -> None:
    from webapp.train.serving import CheckpointServeError, checkpoint_register

    try:
        endpoint = checkpoint_register(checkpoint=checkpoint)
        run_log(run_id=checkpoint.run_id, message=f"Registered and served as {endpoint.name}.")
    except CheckpointServeError as error:
        run_log(run_id=checkpoint.run_id, message=f"Not served yet: {error}", level=RunEvent.Level.WARNING)


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if value == value and abs(value) != float("inf") else None  # NaN and inf are no data
