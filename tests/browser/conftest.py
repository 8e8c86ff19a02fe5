"""Browser fixtures: Errata served by daphne in a subprocess, a Celery worker, and Debian's Chromium."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO, _database_url_for_subprocess, free_port, wait_for

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="session")
def collected_static():
    """Served as in production: whitenoise serves collected files only when DEBUG is off."""
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=REPO, check=True)


@pytest.fixture
def live_errata(transactional_db, celery_worker_process, collected_static):
    """Errata under daphne (the real ASGI server) on a free port, sharing this test's database."""
    port = free_port()
    env = dict(os.environ, DATABASE_URL=_database_url_for_subprocess(), ALLOWED_HOSTS="127.0.0.1,localhost")
    server = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "webapp.asgi:application"],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answering() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2).status == 200
        except OSError:
            return False

    wait_for(answering, timeout=60, what="daphne to answer")
    yield f"http://127.0.0.1:{port}"
    _stop(server)


@pytest.fixture
def browser_page(monkeypatch):
    # sync_playwright keeps an event loop running in this thread; the test's own ORM calls
    # (creating users, reading rows) are still plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    if not Path(CHROMIUM).exists():
        pytest.skip("needs Debian's chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.set_default_timeout(30_000)
        yield page
        browser.close()
