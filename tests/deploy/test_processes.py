"""Errata as it runs at scale, on one machine: the web app, a default-queue worker, a gpu-queue worker and a model
server, each its own process, sharing only PostgreSQL, Redis and the artifacts folder.

The model server announces its model; the test then works over HTTP only, as a signed-in researcher: the
announced model appears, a training set is uploaded, and a LoRA run on the announced model goes web -> gpu worker
-> events back through the default worker -> succeeded, its checkpoint loaded into the model server and registered
once (the next heartbeat finds it registered, and does not add it again).

It makes (and drops) its own database on the PostgreSQL server of ERRATA_TEST_DATABASE_URL (default: the local
one) and empties Redis database 14 (ERRATA_TEST_DEPLOY_REDIS_URL) for its queues; it is skipped, saying why,
where either cannot be reached.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, stop_process, wait_for
from tests.services import throwaway_database, unreachable

pytestmark = [pytest.mark.slow, pytest.mark.services]
REDIS_URL = os.environ.get("ERRATA_TEST_DEPLOY_REDIS_URL", "redis://127.0.0.1:6379/14")
USERNAME, PASSWORD = "deploy-researcher", "correct-horse-battery-staple"
HEARTBEAT_S = 2
# Made-up questions and answers: a handful of steps on them is a real run, however little it learns.
PAIRS = [(f"Q{i}?", word) for i, word in enumerate(["apple", "river", "stone", "cloud", "tiger", "maple", "ocean", "piano"])]


@pytest.fixture
def deploy_env(tmp_path):
    """The environment every process gets: a fresh migrated database with a researcher, an empty Redis database,
    the artifacts folder they share (on several machines: a shared mount)."""
    reason = unreachable(REDIS_URL)
    if reason:
        pytest.skip(f"needs PostgreSQL and Redis: {reason}")
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # no message left by an earlier run reaches these workers
    with throwaway_database(f"errata_deploy_{os.getpid()}") as database_url:
        env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
        env.update(DATABASE_URL=database_url, REDIS_URL=REDIS_URL,
                   ERRATA_ARTIFACTS_DIR=str(tmp_path / "artifacts"), ERRATA_DATA_DIR=str(tmp_path / "data"),
                   DEBUG="0", ALLOWED_HOSTS="127.0.0.1", SECURE_COOKIES="0", LOG_LEVEL="INFO", OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, "-m", "tests.deploy.prepare", USERNAME, PASSWORD], cwd=REPO, env=env,
                       check=True)
        yield env


def spawn(argv: list[str], env: dict, log_path: Path) -> subprocess.Popen:
    """One Errata process, its output in ``log_path`` (a pipe nobody reads would fill up and stall it)."""
    with log_path.open("w") as log:
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    process.log_path = log_path
    return process


def start_processes(env: dict, folder: Path, model_dir: Path, web_port: int, model_port: int) -> dict[str, subprocess.Popen]:
    """Each as an operator would start it on its own machine (the web side's commands set DJANGO_SETTINGS_MODULE)."""
    celery = [sys.executable, "-m", "celery"]
    worker_options = ["--pool", "solo", "--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"]
    commands = {
        "model-server": [sys.executable, "-m", "gpu_worker", "serve", "--model", f"tiny={model_dir}", "--backend", "cpu",
                         "--port", str(model_port), "--num-threads", "1",
                         "--announce-url", f"http://127.0.0.1:{model_port}/v1", "--announce-interval", str(HEARTBEAT_S)],
        "web": [sys.executable, "manage.py", "serve", "--port", str(web_port)],
        "default-worker": [*celery, "-A", "webapp", "worker", "-Q", "default", *worker_options],
        "gpu-worker": [*celery, "-A", "gpu_worker.celery_app", "worker", "-Q", "gpu", *worker_options],
    }
    return {name: spawn(argv, env, folder / f"{name}.log") for name, argv in commands.items()}


def logs(processes: dict[str, subprocess.Popen]) -> str:
    return "\n".join(f"--- {name} (exit status {p.poll()})\n{p.log_path.read_text()[-2500:]}" for name, p in processes.items())


class Researcher:
    """A signed-in browser session against the web process: the login form, then pages and the API with CSRF."""

    def __init__(self, base: str):
        import requests

        self.base, self.http = base, requests.Session()

    def sign_in(self) -> None:
        page = self.http.get(f"{self.base}/accounts/login/", timeout=30)
        response = self.http.post(f"{self.base}/accounts/login/", data={
            "username": USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": csrf_field(page.text)},
            allow_redirects=False, timeout=30)
        assert response.status_code == 302, response.text[-2000:]

    def get(self, path: str):
        response = self.http.get(f"{self.base}{path}", timeout=30)
        assert response.status_code == 200, (path, response.text[-2000:])
        return response.json()

    def post(self, path: str, body: dict | None = None):
        return self.http.post(f"{self.base}{path}", json=body, headers={"X-CSRFToken": self.http.cookies["csrftoken"]},
                              allow_redirects=False, timeout=30)

    def upload_training_set(self, name: str, lines: list[dict]) -> None:
        form = self.http.get(f"{self.base}/train/sets/new/", timeout=30)
        jsonl = "".join(json.dumps(line) + "\n" for line in lines)
        response = self.http.post(f"{self.base}/train/sets/new/", data={
            "csrfmiddlewaretoken": csrf_field(form.text), "name": name, "source": "file", "validation_share": "0",
            "seed": "0"}, files={"file": ("pairs.jsonl", jsonl.encode(), "application/jsonl")},
            allow_redirects=False, timeout=30)
        assert response.status_code == 302, response.text[-3000:]


def csrf_field(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def finished(researcher: Researcher, run_id: int, processes: dict[str, subprocess.Popen]) -> dict:
    def ended():
        if any(p.poll() is not None for p in processes.values()):
            pytest.fail(f"a process died:\n{logs(processes)}")
        run = researcher.get(f"/api/runs/{run_id}/")
        return run if run["status"] in ("succeeded", "failed", "cancelled") else None

    return wait_for(ended, timeout=120, interval=0.5, what=f"training run {run_id}")


def test_a_training_run_crosses_web_gpu_worker_default_worker_and_an_announced_model_server(deploy_env, tmp_path):
    from tests.gpu_worker.tiny import build_tiny_model

    model_dir = build_tiny_model(tmp_path / "tiny")
    web_port, model_port = free_port(), free_port()
    researcher = Researcher(f"http://127.0.0.1:{web_port}")  # before the processes: nothing to leave running
    processes = start_processes(deploy_env, tmp_path, model_dir, web_port, model_port)
    try:

        def web_answers():
            import requests

            try:
                return researcher.http.get(f"{researcher.base}/health/", timeout=5).status_code == 200
            except requests.ConnectionError:
                return processes["web"].poll() is not None  # stop waiting; sign_in says it is gone

        wait_for(web_answers, timeout=60, what="the web process")
        researcher.sign_in()

        def announced():
            return [e for e in researcher.get("/api/endpoints/")["results"] if e["model_name"] == "tiny"]

        (base,) = wait_for(announced, timeout=90, interval=0.5, what=f"the announced model\n{logs(processes)}")
        assert base["base_url"] == f"http://127.0.0.1:{model_port}/v1" and base["kind"] == "local"
        assert base["base_weights"] == str(model_dir) and base["roles"] == ["student"] and base["last_seen_at"]

        researcher.upload_training_set("pairs", [
            {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]} for q, a in PAIRS])
        (training_set,) = researcher.get("/api/training-sets/")["results"]
        assert training_set["counts"]["train"] == len(PAIRS)

        launch = researcher.post("/api/train-runs/", {
            "training_set": training_set["id"], "base": base["id"], "preset": "cpu-lora-tiny",
            "config": {"max_steps": 5, "log_every": 1, "save_every": 5, "torch_threads": 1}})
        assert launch.status_code == 201, launch.text
        run = finished(researcher, launch.json()["id"], processes)
        assert run["status"] == "succeeded", f"{run['error']}\n{logs(processes)}"

        metrics = researcher.get(f"/api/train-runs/{run['id']}/metrics/")
        assert [m["step"] for m in metrics if m["loss"] is not None] == [1, 2, 3, 4, 5]

        def served():
            final = [c for c in researcher.get(f"/api/checkpoints/?run={run['id']}")["results"] if c["is_final"]]
            return final[0] if final and final[0]["endpoint"] else None

        checkpoint = wait_for(served, timeout=30, what="the final checkpoint registered as a model")
        assert Path(checkpoint["path"], "adapter_config.json").is_file()
        check = researcher.post(f"/api/endpoints/{checkpoint['endpoint']}/test/").json()
        assert check["ok"], check  # the web process asks the model server for the trained adapter

        def seen_by_a_heartbeat():  # the server now serves the adapter too; it is the same model, not a new one
            same = [e for e in researcher.get("/api/endpoints/")["results"] if e["model_name"] == f"errata-run-{run['id']}"]
            return same if len(same) > 1 or (same and same[0]["last_seen_at"]) else None

        (trained,) = wait_for(seen_by_a_heartbeat, timeout=4 * HEARTBEAT_S + 10, what="a heartbeat with the adapter")
        assert trained["id"] == checkpoint["endpoint"] and trained["roles"] == ["student", "assistant"]
    finally:
        researcher.http.close()
        for process in processes.values():
            process.terminate()  # all at once: each takes a moment to stop
        for process in processes.values():
            stop_process(process)
