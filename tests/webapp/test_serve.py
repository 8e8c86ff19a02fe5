"""`manage.py serve`: several daphne processes answer on one port and stop together; behind a proxy they trust its headers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request

import pytest
from daphne.cli import CommandLineInterface

from tests.conftest import REPO, free_port, wait_for
from webapp.core.management.commands.serve import daphne_argv


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    return found


@pytest.mark.slow
def test_two_processes_share_the_port_and_stop_together(tmp_path):
    port = free_port()
    env = dict(os.environ, DEBUG="1", ERRATA_DATA_DIR=str(tmp_path))
    env.pop("DATABASE_URL", None)
    with (tmp_path / "serve.log").open("w") as log:
        parent = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--processes", "2"],
                                  cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        def healthy() -> bool:
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2).status == 200
            except OSError:
                return parent.poll() is not None

        wait_for(healthy, timeout=60, what="the web processes")
        assert parent.poll() is None, (tmp_path / "serve.log").read_text()
        children = children_of(parent.pid)
        assert len(children) == 2
        assert all(urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=5).status == 200 for _ in range(10))
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
        assert not any(os.path.exists(f"/proc/{pid}") and "zombie" not in open(f"/proc/{pid}/status").read().lower()
                       for pid in children)
    finally:
        if parent.poll() is None:
            parent.kill()


def daphne_reads(argv: list[str]):
    """The options daphne's own command line makes of ``argv`` (what each child process would run with)."""
    assert argv[1:3] == ["-m", "daphne"]
    return CommandLineInterface().parser.parse_args(argv[3:])


@pytest.mark.parametrize("behind_proxy", [False, True])
def test_daphne_trusts_forwarded_headers_only_behind_a_proxy(settings, behind_proxy):
    settings.ERRATA_BEHIND_PROXY = behind_proxy
    options = daphne_reads(daphne_argv(fd=7))
    assert options.proxy_headers is behind_proxy  # X-Forwarded-For, -Port and -Proto, from any client when on
    assert (options.file_descriptor, options.application) == (7, "webapp.asgi:application")


def test_the_access_log_goes_to_daphne_only_when_asked():
    assert daphne_reads(daphne_argv(fd=7)).access_log is None
    assert daphne_reads(daphne_argv(fd=7, access_log="-")).access_log == "-"
