"""Shared fixtures: one user per role, signed-in clients, the shared data folder, a real Celery worker."""

from __future__ import annotations

import os
import socket
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def shared_dir() -> Path:
    """../shared beside the repo: real benchmark and seed files (absent from a user's clone)."""
    if not SHARED.is_dir():
        pytest.skip("needs ../shared (not in a user's clone)")
    return SHARED


def _make_user(django_user_model, username: str, role: str):
    from webapp.accounts.services import user_create

    return user_create(username=username, role=role, password=PASSWORD)


@pytest.fixture
def admin_user(db, django_user_model):
    return _make_user(django_user_model, "ada-admin", "admin")


@pytest.fixture
def researcher(db, django_user_model):
    return _make_user(django_user_model, "rita-researcher", "researcher")


@pytest.fixture
def annotator(db, django_user_model):
    return _make_user(django_user_model, "anna-annotator", "annotator")


@pytest.fixture
def researcher_client(client, researcher):
    client.force_login(researcher)
    return client


@pytest.fixture
def annotator_client(client, annotator):
    client.force_login(annotator)
    return client


def _database_url_for_subprocess() -> str:
    """The URL of the test database the current test writes to, for a worker in another process."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings['NAME']}"
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    return f"postgres://{settings['USER']}:{settings['PASSWORD'] or ''}@{host}:{port}/{settings['NAME']}"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_celery_worker(log_path: Path, **env: str) -> subprocess.Popen:
    """A real ``celery worker`` on the default queue, on this test's database; its log goes to ``log_path``
    (a pipe nobody reads would fill up and stall the worker)."""
    environment = dict(os.environ, DATABASE_URL=_database_url_for_subprocess(), **env)
    with log_path.open("a") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "default", "--pool", "solo",
             "--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )
    worker.log_path = log_path
    return worker


def start_gpu_worker(log_path: Path, **env: str | None) -> subprocess.Popen:
    """A real gpu_worker on the `gpu` queue, its log in ``log_path``; ``env`` adds variables (None removes one).

    Without DJANGO_SETTINGS_MODULE (pytest sets it): gpu_worker never loads Django, and Celery must not try.
    """
    environment = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    for key, value in env.items():
        if value is None:
            environment.pop(key, None)
        else:
            environment[key] = value
    with log_path.open("a") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "gpu_worker.celery_app", "worker", "-Q", "gpu", "--pool", "solo",
             "--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"],
            cwd=REPO, env=environment, stdout=log, stderr=subprocess.STDOUT,
        )
    worker.log_path = log_path
    return worker


def stop_process(process: subprocess.Popen, timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path):
    """A real Celery worker for this test, stopped afterwards."""
    worker = start_celery_worker(tmp_path / "worker.log")
    yield worker
    stop_process(worker)


def wait_for(predicate, *, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where CUDA is; elsewhere they are skipped with the reason."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run on a GPU machine)")
    for item in gpu_items:
        item.add_marker(skip)



def pytest_sessionfinish(session, exitstatus):
    """Remove this session's data folder (test database, broker queue, uploads)."""
    import shutil

    folder = Path(os.environ["ERRATA_DATA_DIR"])
    if folder.name.startswith("session-") and folder.parent.name == "test":
        shutil.rmtree(folder, ignore_errors=True)
