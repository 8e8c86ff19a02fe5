"""The Celery task gpu_worker.train: refusals before anything starts, events forwarded, a runner that dies, a real worker."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gpu_worker.celery_app import make_app
from gpu_worker.training import task as train_task
from gpu_worker.training.spec import TrainSpecError
from gpu_worker.training.task import train
from tests.conftest import start_gpu_worker, stop_process
from tests.gpu_worker.test_tasks import read_replies
from tests.gpu_worker.test_training_runs import qa_rows, write_spec

REPO = Path(__file__).resolve().parents[2]
REPLY_TO = {"task": "errata_tests.train_event", "queue": "test-train-events"}


@pytest.fixture
def sent(monkeypatch):
    """Messages the task hands to the broker, as (task name, args, queue)."""
    messages = []
    monkeypatch.setattr(train_task.app, "send_task", lambda name, args, queue: messages.append((name, args, queue)))
    return messages


def spec_dict(tmp_path, tiny_model_dir, **overrides) -> dict:
    return json.loads(write_spec(tmp_path, tiny_model_dir, qa_rows(4), reply_to=REPLY_TO, **overrides).read_text())


def test_the_task_is_registered_by_name_on_the_gpu_queue_and_survives_a_lost_worker(tmp_path):
    app = make_app({"ERRATA_DATA_DIR": str(tmp_path)})
    assert "gpu_worker.training.task" in app.conf.include
    assert train.name == "gpu_worker.train" and train.acks_late and train.reject_on_worker_lost
    assert app.amqp.router.route({}, "gpu_worker.train")["queue"].name == "gpu"


def test_a_config_the_machine_cannot_run_is_refused_before_anything_starts(tmp_path, tiny_model_dir, sent,
                                                                           monkeypatch):
    monkeypatch.setattr(train_task, "cuda_device_count", lambda: 0)
    monkeypatch.setattr(train_task.subprocess, "Popen", lambda *args, **kwargs: pytest.fail("nothing may start"))
    with pytest.raises(TrainSpecError, match="^spec.config: QLoRA needs a CUDA GPU"):
        train.run(spec_dict(tmp_path, tiny_model_dir, method="qlora"))
    [(name, [run_id, event], queue_name)] = sent
    assert (name, run_id, queue_name) == (REPLY_TO["task"], 7, REPLY_TO["queue"])
    assert event["type"] == "done" and event["status"] == "failed"
    assert event["error"].startswith("spec.config: QLoRA needs a CUDA GPU")
    assert not (tmp_path / "out").exists()


def test_a_malformed_spec_is_refused_naming_the_field(tmp_path, tiny_model_dir, sent):
    spec = {**spec_dict(tmp_path, tiny_model_dir), "train_file": str(tmp_path / "missing.jsonl")}
    with pytest.raises(TrainSpecError, match="^spec.train_file: "):
        train.run(spec)
    assert sent[0][1][1]["error"].startswith("spec.train_file: ")


def fake_runner(script: str):
    """A launch_command stand-in: a Python process that prints what ``script`` prints."""
    return lambda spec: [sys.executable, "-c", script]


def test_events_are_forwarded_and_a_runner_that_dies_is_reported_with_its_last_words(tmp_path, tiny_model_dir,
                                                                                      sent, monkeypatch):
    script = ("import sys; print('a library prints this'); "
              "print('ERRATA_EVENT {\"type\": \"started\", \"total_steps\": 5, \"examples\": 4, \"resumed_from\": null}'); "
              "sys.stdout.flush(); sys.stderr.write('Traceback ...\\nRuntimeError: CUDA out of memory\\n'); sys.exit(3)")
    monkeypatch.setattr(train_task, "launch_command", fake_runner(script))
    done = train.run(spec_dict(tmp_path, tiny_model_dir))
    assert [args[1]["type"] for _, args, _ in sent] == ["started", "done"]
    assert sent[-1][1] == [7, done]
    assert done["status"] == "failed" and done["manifest"] is None
    assert done["error"].startswith("the training process exited with status 3 without finishing")
    assert done["error"].endswith("RuntimeError: CUDA out of memory")
    assert json.loads((tmp_path / "out" / "spec.json").read_text())["run_id"] == 7  # what the runner reads


def test_the_runners_own_done_event_is_the_result(tmp_path, tiny_model_dir, sent, monkeypatch):
    done = {"type": "done", "status": "cancelled", "error": "", "manifest": None, "last_checkpoint": "/c/checkpoint-3",
            "metrics": {}}
    monkeypatch.setattr(train_task, "launch_command", fake_runner(f"print('ERRATA_EVENT ' + {json.dumps(json.dumps(done))})"))
    assert train.run(spec_dict(tmp_path, tiny_model_dir)) == done
    assert [args for _, args, _ in sent] == [[7, done]]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_runner_whose_worker_is_killed_is_stopped_too(tmp_path):
    """Else a redelivered task would start a second runner beside the orphan, both writing one folder."""
    parent = subprocess.run([sys.executable, "-c", (
        "import subprocess, sys, os\n"
        "from gpu_worker.training.task import _die_with_parent\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], preexec_fn=_die_with_parent)\n"
        "print(child.pid, flush=True)\n"
        "os._exit(0)  # as abrupt as SIGKILL: no cleanup runs\n")], cwd=REPO, capture_output=True, text=True, timeout=30)
    child_pid = int(parent.stdout.strip())
    deadline = time.monotonic() + 10
    while _alive(child_pid):
        assert time.monotonic() < deadline, "the runner outlived its worker"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"  # a zombie has ended: it only waits for init to reap it


# --- a real worker ------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_real_worker_trains_and_forwards_every_event_to_reply_to(tmp_path, tiny_model_dir):
    data_dir = tmp_path / "data"
    client = make_app({"ERRATA_DATA_DIR": str(data_dir)})  # the web side's view of the same local broker
    log_path = tmp_path / "gpu-worker.log"
    worker = start_gpu_worker(log_path, REDIS_URL=None, ERRATA_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1",
                              HF_HUB_OFFLINE="1")
    try:
        spec = spec_dict(tmp_path / "run", tiny_model_dir, max_steps=20, log_every=5, save_every=10)
        client.send_task("gpu_worker.train", args=[spec], queue="gpu")
        # started, metrics at steps 1, 5, 10, 15 and 20, checkpoints at 10 and 20, done
        replies = read_replies(client, REPLY_TO["queue"], 9, timeout=180, log_path=log_path)
    finally:
        stop_process(worker, timeout=30)
    assert {name for name, _ in replies} == {REPLY_TO["task"]} and {args[0] for _, args in replies} == {7}
    events = [args[1] for _, args in replies]
    assert events[0]["type"] == "started" and events[0]["total_steps"] == 20
    assert [event["step"] for event in events if event["type"] == "metrics"] == [1, 5, 10, 15, 20]
    assert [event["step"] for event in events if event["type"] == "checkpoint"] == [10, 20]
    assert events[-1]["status"] == "succeeded" and Path(events[-1]["manifest"]).is_file()
    assert "run 7 | " in log_path.read_text()  # the runner's log shows in the worker's
