"""The processes of a whole Errata loop for end-to-end tests: a model server, a default worker and a gpu worker."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO, free_port, start_celery_worker, start_gpu_worker, stop_process, wait_for
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.runs.models import Run
from webapp.train.models import Checkpoint

# Answers nothing in a question "Q<i>?" predicts: a model knows them only once trained on them.
WORDS = ["apple", "river", "stone", "cloud", "tiger", "maple", "ocean", "piano", "lemon", "comet", "eagle", "frost",
         "grape", "honey", "ivory", "jelly", "koala", "lunar", "mango", "noble", "olive", "pearl", "quilt", "robin",
         "sugar", "tulip", "umber", "vivid", "waltz", "yacht"]



def start_model_server(model_dir: Path | None, port: int, log_path: Path) -> subprocess.Popen:
    """Errata's CPU model server: the tiny model at ``model_dir`` (served as "tiny"), or SmolLM2 when None."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    model = ["--model", f"tiny={model_dir}"] if model_dir else ["--smollm2"]
    with log_path.open("a") as log:
        server = subprocess.Popen([sys.executable, "-m", "gpu_worker", "serve", *model, "--port", str(port),
                                   "--num-threads", "1"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def up() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200
        except OSError:
            return server.poll() is not None  # died: stop waiting, the assertion below says so

    wait_for(up, timeout=120, what="the model server")
    assert server.poll() is None, log_path.read_text()
    return server


@dataclass
class Loop:
    """The running processes; ``base_url`` is the model server's OpenAI-compatible URL."""

    base_url: str
    server: subprocess.Popen
    web: subprocess.Popen
    gpu: subprocess.Popen
    folder: Path

    def finished(self, run: Run, timeout: float) -> Run:
        """``run`` once it has ended (or a worker died); refreshed."""
        wait_for(lambda: Run.objects.get(pk=run.pk).is_finished or self.web.poll() is not None
                 or self.gpu.poll() is not None, timeout=timeout, what=f"{run.kind} run #{run.pk}")
        run.refresh_from_db()
        return run

    def logs(self) -> str:
        return "".join((self.folder / name).read_text()[-3000:] for name in ("web.log", "gpu.log", "server.log"))


def purge_queues(*names: str) -> None:
    """Drop messages an earlier test left in the shared broker, so these workers take only this test's jobs."""
    from webapp.celery import app

    with app.connection_for_write() as connection:
        for name in names:
            connection.default_channel.queue_purge(name)


@contextlib.contextmanager
def errata_loop(folder: Path, model_dir: Path | None) -> Iterator[Loop]:
    """Start the model server and both workers; stop them all on the way out, whatever happened."""
    purge_queues("default", "gpu")
    port = free_port()
    server = start_model_server(model_dir, port, folder / "server.log")
    started: list[subprocess.Popen] = [server]
    try:
        started.append(start_celery_worker(folder / "web.log"))
        started.append(start_gpu_worker(folder / "gpu.log"))
        yield Loop(f"http://127.0.0.1:{port}/v1", server, started[1], started[2], folder)
    finally:
        for process in started:
            process.terminate()  # all at once: each takes seconds to stop
        for process in started:
            stop_process(process)


def served_checkpoint(run: Run) -> Checkpoint:
    """The run's final checkpoint once it is registered as an endpoint (the web worker does it after the run)."""
    return wait_for(lambda: Checkpoint.objects.filter(run=run, is_final=True, endpoint__isnull=False).first(),
                    timeout=60, what="the served checkpoint")


def local_model(loop, name: str, weights: str) -> ModelEndpoint:
    return ModelEndpoint.objects.create(name=name, kind=EndpointKind.LOCAL, base_url=loop.base_url, model_name=name,
                                        base_weights=weights, max_concurrency=4)
