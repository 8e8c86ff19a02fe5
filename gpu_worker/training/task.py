"""The Celery task ``gpu_worker.train``: check a training spec, start the runner process, forward its events.

The runner runs in its own process (several, through a launcher, on several GPUs) so that a crash, an
out-of-memory kill or DeepSpeed's process group never takes the worker down with it. Every event the
runner prints goes to ``reply_to.task(run_id, event)``; if the runner dies without a ``done`` event,
the task sends one (failed, with the end of the log). A redelivered task (the worker was killed)
starts the runner again, and the runner resumes from its newest checkpoint.
"""

from __future__ import annotations

import collections
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpu_worker.celery_app import REPO, app
from gpu_worker.training.events import done_event, parse_event_line
from gpu_worker.training.layout import path_or_none, write_json_atomically
from gpu_worker.training.spec import EventsTo, TrainSpec, TrainSpecError, parse_events_to, parse_train_spec
from pipeline.training.config import config_refusals
from pipeline.training.launch import deepspeed_config, launcher_argv

logger = logging.getLogger(__name__)
LOG_TAIL_LINES = 30  # of the runner's stderr, in the error of a run that died without saying why


@app.task(name="gpu_worker.train", acks_late=True, reject_on_worker_lost=True)
def train(spec: dict) -> dict:
    """Run one training spec to its end; returns (and sends to ``spec.reply_to``) the final ``done`` event.

    A spec that is malformed, or that this machine cannot run (``config_refusals``), is refused before
    anything starts: a failed ``done`` event goes to reply_to and the task raises TrainSpecError.
    """
    try:
        checked = parse_train_spec(spec)
        refusals = config_refusals(checked.config, cuda_devices=cuda_device_count())
        if refusals:
            raise TrainSpecError(f"spec.config: {'; '.join(refusals)}")
    except TrainSpecError as error:
        reply_to, run_id = _reply_address_of(spec)
        if reply_to is not None:
            send_event(reply_to, run_id, done_event("failed", error=str(error)))
        raise
    return run_training(checked)


def cuda_device_count() -> int:
    import torch

    return torch.cuda.device_count()


def run_training(spec: TrainSpec) -> dict:
    """Start the runner on ``spec``, forward its events while it trains, and return its ``done`` event."""
    folder = spec.folder
    folder.root.mkdir(parents=True, exist_ok=True)
    write_json_atomically(folder.spec, spec.to_dict())
    argv = launch_command(spec)
    logger.info("run %s: starting %s", spec.run_id, " ".join(argv))
    process = subprocess.Popen(argv, cwd=REPO, env=runner_environment(spec), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, bufsize=1, preexec_fn=_die_with_parent)
    stderr_tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL_LINES)
    drain = threading.Thread(target=_drain_stderr, args=(process.stderr, stderr_tail, spec.run_id), daemon=True)
    drain.start()
    done = None
    for line in process.stdout:
        event = parse_event_line(line.rstrip("\n"))
        if event is None:
            logger.info("run %s: %s", spec.run_id, line.rstrip())
            continue
        if event["type"] == "done":
            done = event
        _forward(spec, event)
    status = process.wait()
    drain.join(timeout=10)
    if done is None:
        done = done_event("failed", error=_died_message(status, stderr_tail),
                          last_checkpoint=path_or_none(folder.newest_checkpoint()))
        _forward(spec, done)
    logger.info("run %s: %s (exit status %s)", spec.run_id, done["status"], status)
    return done


def launch_command(spec: TrainSpec, *, python: str = sys.executable) -> list[str]:
    """``python -m gpu_worker.training spec.json``, or that under the configured launcher for several GPUs."""
    config = spec.config
    deepspeed_file = None
    if config.launcher == "accelerate" and config.deepspeed_stage:
        deepspeed_file = spec.output_dir / "deepspeed.json"  # accelerate reads its DeepSpeed settings from a file
        write_json_atomically(deepspeed_file, deepspeed_config(config))
    several = config.devices > 1 or config.deepspeed_stage > 0
    return launcher_argv(config, args=[str(spec.folder.spec)], python=python,
                         master_port=free_port() if several else None,
                         deepspeed_config_file=str(deepspeed_file) if deepspeed_file else None)


def runner_environment(spec: TrainSpec, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if environ is None else environ)
    env.setdefault("HF_HUB_OFFLINE", "1")  # weights come from disk; never a download in the middle of a run
    env["PYTHONUNBUFFERED"] = "1"
    # The deepspeed and accelerate launchers live beside this Python, which may not be on PATH (a venv).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    if spec.config.torch_threads > 0:
        env["OMP_NUM_THREADS"] = str(spec.config.torch_threads)
    return env


def free_port() -> int:
    """A free TCP port for the launcher's rendezvous: two runs on one machine must not share 29500."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def send_event(reply_to: EventsTo, run_id: Any, event: dict) -> None:
    app.send_task(reply_to.task, args=[run_id, event], queue=reply_to.queue)


def _forward(spec: TrainSpec, event: dict) -> None:
    if spec.reply_to is None:
        logger.info("run %s: %s", spec.run_id, event)
        return
    try:
        send_event(spec.reply_to, spec.run_id, event)
    except Exception:
        if event["type"] == "done":
            raise
        # A progress event lost to a broker hiccup must not stop reading: the runner would block on a full pipe.
        logger.exception("run %s: could not send a %s event", spec.run_id, event["type"])


def _drain_stderr(stream, tail: collections.deque, run_id: Any) -> None:
    """The runner's log into the worker's log (and a tail for the error message); a pipe left unread would stall it."""
    for line in stream:
        line = line.rstrip("\n")
        tail.append(line)
        logger.info("run %s | %s", run_id, line)


def _died_message(status: int, tail: collections.deque) -> str:
    how = f"was killed by signal {-status}" if status < 0 else f"exited with status {status}"
    lines = "\n".join(tail) or "(nothing)"
    return f"the training process {how} without finishing; the end of its log:\n{lines}"


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends it SIGTERM when the worker dies (Linux), so a killed worker
    leaves no orphan training on; the redelivered task's runner then has the folder to itself."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _reply_address_of(spec: Any) -> tuple[EventsTo | None, Any]:
    """Where a spec that failed its checks wants its events, so its sender still hears of the failure."""
    if not isinstance(spec, Mapping):
        return None, None
    try:
        return parse_events_to(spec.get("reply_to")), spec.get("run_id")
    except TrainSpecError:
        return None, None
