"""Run one training spec end to end in this process: data, model, Trainer, checkpoints, final weights, manifest.

Started as ``python -m gpu_worker.training SPEC.json`` by the ``gpu_worker.train`` task (through torchrun,
deepspeed or accelerate when the run uses several GPUs). Progress goes to stdout as events (events.py),
the log to ``output_dir/train.log`` and stderr. It resumes from the newest complete checkpoint by itself,
stops at the next step end when ``output_dir/STOP`` appears, and always ends with one ``done`` event:
a failure is a ``done`` with status failed and a plain error, not only a traceback.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

from gpu_worker.training.events import done_event, emit, is_main_process, log_event
from gpu_worker.training.layout import RunFolder, path_or_none, write_json_atomically
from gpu_worker.training.spec import TrainingError, TrainSpec, TrainSpecError, parse_train_spec

logger = logging.getLogger("gpu_worker.training")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main(argv: list[str]) -> int:
    """Exit status 0 when the run succeeded or was cancelled, 1 when it failed, 2 for a bad command line or spec."""
    if len(argv) != 1:
        print("usage: python -m gpu_worker.training SPEC.json", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never download weights at run time
    for progress_bars in ("HF_HUB_DISABLE_PROGRESS_BARS", "HF_DATASETS_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(progress_bars, "1")  # bars redrawn in a log file are noise
    try:
        spec = parse_train_spec(json.loads(Path(argv[0]).read_text()))
    except (OSError, ValueError) as error:  # TrainSpecError and bad JSON are ValueErrors
        emit(done_event("failed", error=f"spec {argv[0]}: {error}"))
        return 2
    spec.output_dir.mkdir(parents=True, exist_ok=True)
    _setup_logging(spec.folder.log)
    if spec.config.torch_threads > 0:
        import torch

        torch.set_num_threads(spec.config.torch_threads)
    with _one_runner_per_folder(spec.folder):
        done = run_reporting_failures(spec)
    emit(done)
    return 1 if done["status"] == "failed" else 0


def run_reporting_failures(spec: TrainSpec) -> dict:
    """``run(spec)``, with any failure turned into a ``done`` event whose error says what went wrong."""
    try:
        return run(spec)
    except (TrainingError, TrainSpecError) as error:
        logger.error("training failed: %s", error)
        message = str(error)
    except Exception as error:  # noqa: BLE001 - every failure must reach the web side as a done event
        logger.exception("training failed")
        message = f"{type(error).__name__}: {error}"
    return done_event("failed", error=message, last_checkpoint=path_or_none(spec.folder.newest_checkpoint()))


def run(spec: TrainSpec) -> dict:
    """Train (or resume) the run of ``spec``; the ``done`` event to report."""
    import torch

    from pipeline.training.config import config_refusals

    folder, config = spec.folder, spec.config
    if folder.manifest.is_file():  # a redelivered task for a run that already finished
        logger.info("%s exists: the run finished before", folder.manifest)
        metrics = json.loads(folder.manifest.read_text()).get("metrics", {})
        return done_event("succeeded", manifest=str(folder.manifest), metrics=metrics,
                          last_checkpoint=path_or_none(folder.newest_checkpoint()))
    if folder.stop_requested():
        logger.info("%s exists: cancelled before training started", folder.stop)
        return done_event("cancelled", last_checkpoint=path_or_none(folder.newest_checkpoint()))
    refusals = config_refusals(config, cuda_devices=torch.cuda.device_count())
    if refusals:
        raise TrainingError("; ".join(refusals))
    started = time.monotonic()
    session = _build_session(spec)
    logger.info("ready to train after %.1fs", time.monotonic() - started)
    output = session.trainer.train(resume_from_checkpoint=path_or_none(session.resume_from))
    callback = session.callback
    if callback.stopped:
        logger.info("stopped at step %d on request", session.trainer.state.global_step)
        return done_event("cancelled", last_checkpoint=path_or_none(folder.newest_checkpoint()))
    steps = session.trainer.state.global_step
    if spec.eval_file is not None and (config.eval_every == 0 or steps % config.eval_every):
        session.trainer.evaluate()  # not done yet at this step; the callback reports it as a metrics event
    metrics = {
        "train_loss": callback.summary.get("train_loss", output.training_loss),
        "eval_loss": callback.last_eval_loss,
        "steps": steps,
        "runtime_s": round(time.monotonic() - started, 3),
        "tokens_per_s": _rate(session.trainer.state.num_input_tokens_seen, callback.summary.get("train_runtime")),
        **session.counts,
    }
    manifest = _save_final(session, spec, metrics)
    return done_event("succeeded", manifest=path_or_none(manifest), metrics=metrics,
                      last_checkpoint=path_or_none(folder.newest_checkpoint()))


def _build_session(spec: TrainSpec):
    from gpu_worker.training.models import build_session

    session = build_session(spec)
    for message in session.warnings:
        logger.warning(message)
        emit(log_event(message, "warning"))
    if session.resume_from is not None:
        logger.info("resuming from %s", session.resume_from)
    return session


def _save_final(session, spec: TrainSpec, metrics: dict) -> Path | None:
    """Final weights under output_dir/final/, the manifest written last; None on processes other than the main one."""
    from gpu_worker.training.models import merge_adapter

    folder, trainer, config = spec.folder, session.trainer, spec.config
    kind = "model" if config.method == "full" else "adapter"
    if trainer.is_world_process_zero() and folder.final.exists():
        shutil.rmtree(folder.final)  # what a killed attempt left: never mixed with this one's files
    trainer.accelerator.wait_for_everyone()
    weights = folder.final / kind
    trainer.save_model(str(weights))  # on every process: ZeRO-3 gathers the shards to save them
    if not trainer.is_world_process_zero():
        return None
    session.tokenizer.save_pretrained(weights)
    merged = merge_adapter(session, weights, folder.final / "merged") if config.merge else None
    write_json_atomically(folder.manifest, {
        "run_id": spec.run_id,
        "kind": kind,
        "adapter": str(weights) if kind == "adapter" else None,
        "merged": path_or_none(merged),
        "model": str(weights) if kind == "model" else None,
        "base_model": str(session.base_model),
        "config": config.to_dict(),
        "metrics": metrics,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    logger.info("wrote %s", folder.manifest)
    return folder.manifest


def _rate(count: float, seconds: float | None) -> float | None:
    return round(count / seconds, 1) if seconds else None


def _setup_logging(log_path: Path) -> None:
    """Errata's and the libraries' log records to stderr, and on the main process to train.log as well."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if is_main_process():
        handlers.append(logging.FileHandler(log_path, encoding="utf-8"))
    formatter = logging.Formatter(LOG_FORMAT)
    root = logging.getLogger()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.captureWarnings(True)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_warning()
    hf_logging.disable_default_handler()  # records go through the root handlers above, once
    hf_logging.enable_propagation()
    hf_logging.disable_progress_bar()


@contextlib.contextmanager
def _one_runner_per_folder(folder: RunFolder) -> Iterator[None]:
    """Wait while another runner works in this folder (a killed worker's child still stopping), then hold it.

    Only the main process locks: the other processes of a multi-GPU run follow it step by step anyway.
    """
    if not is_main_process():
        yield
        return
    with folder.lock.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning("another runner is working in %s; waiting for it to end", folder.root)
            fcntl.flock(handle, fcntl.LOCK_EX)  # released by the kernel when that process dies
        yield
