"""Two daphne processes on one PostgreSQL database and one Redis (channels-redis, Redis cache): a conversation open
in a tab on each streams through either, each tab sees what the other said, a stop pressed in one process stops the
answer written by the other, and the rate limit counts across both.

It makes (and drops) its own database on the PostgreSQL server of ERRATA_TEST_DATABASE_URL (default: the local
one) and uses the Redis of ERRATA_TEST_REDIS_URL; it is skipped, saying why, where either cannot be reached.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import urllib.request

import pytest

from tests.conftest import REPO, free_port, stop_process, wait_for
from tests.fakeopenai import FakeOpenAI
from tests.services import throwaway_database, unreachable
from tests.webapp.chat.conftest import STORY

pytestmark = [pytest.mark.slow, pytest.mark.services]
REDIS_URL = os.environ.get("ERRATA_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RATE_LIMIT = 6


@pytest.fixture(scope="module")
def services_env():
    """A fresh migrated database and the Redis URL, as the environment of a web process."""
    reason = unreachable(REDIS_URL)
    if reason:
        pytest.skip(f"needs PostgreSQL and Redis: {reason}")
    with throwaway_database(f"errata_chat_processes_{os.getpid()}") as database_url:
        env = dict(os.environ, DATABASE_URL=database_url, REDIS_URL=REDIS_URL, ALLOWED_HOSTS="127.0.0.1", DEBUG="0",
                   LOG_LEVEL="WARNING", ERRATA_CHAT_RATE_LIMIT=str(RATE_LIMIT))
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO, env=env, check=True)
        yield env


def start_daphne(env: dict, log_path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                                    "webapp.asgi:application"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def answering() -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2).status == 200
        except OSError:
            return process.poll() is not None  # stop waiting; the assertion below says it died

    wait_for(answering, timeout=60, what="daphne to answer")
    assert process.poll() is None, f"daphne exited: see {log_path}"
    return process, f"127.0.0.1:{port}"


async def receive_until(socket, kind: str, timeout: float = 15) -> list[dict]:
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = json.loads((await socket.receive()).data)
            frames.append(frame)
            if frame["type"] == kind:
                return frames


async def conversation_in_two_processes(hosts: list[str], cookie: str, chat: int, server: FakeOpenAI) -> dict:
    import aiohttp

    seen: dict = {}
    async with aiohttp.ClientSession() as http:
        tabs = [await http.ws_connect(f"ws://{host}/ws/chat/{chat}/",
                                      headers={"Origin": f"http://{host}", "Cookie": f"sessionid={cookie}"})
                for host in hosts]
        one, two = tabs
        for n, (writer, watcher) in enumerate(((one, two), (two, one))):  # an answer streamed through each process
            await writer.send_json({"type": "send", "content": f"question {n} through process {n + 1}"})
            seen[f"writer {n}"] = await receive_until(writer, "done")
            seen[f"watcher {n}"] = [f for f in await receive_until(watcher, "message") if f["type"] == "message"]
            seen[f"watcher {n}"] += [f for f in await receive_until(watcher, "message") if f["type"] == "message"]
        server.configure(reply_with=STORY, stream_chunks=100, stream_delay_s=0.03)
        await one.send_json({"type": "send", "content": "a long story, please"})
        await receive_until(one, "delta")
        await two.send_json({"type": "stop"})  # pressed in the other process
        seen["stopped"] = await receive_until(one, "done")
        server.configure(stream_chunks=2)
        for n in range(3, RATE_LIMIT + 1):
            tab = tabs[n % 2]
            await tab.send_json({"type": "send", "content": f"message {n}"})
            seen[f"message {n}"] = await receive_until(tab, "done" if n < RATE_LIMIT else "error")
        for tab in tabs:
            await tab.close()
    return seen


def saved_messages(env: dict, chat: int) -> list[tuple[str, str]]:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as db:
        return db.execute("SELECT role, status FROM chat_chatmessage WHERE session_id = %s ORDER BY id", (chat,)).fetchall()


def test_two_daphne_processes_on_redis_stream_one_conversation(services_env, tmp_path):
    with FakeOpenAI(stream_chunks=5, stream_delay_s=0.01) as server:
        made = subprocess.run([sys.executable, "-m", "tests.webapp.chat.processes", server.base_url], cwd=REPO,
                              env=services_env, check=True, capture_output=True, text=True)
        fixture = json.loads(made.stdout.strip().splitlines()[-1])
        daphnes = [start_daphne(services_env, tmp_path / f"daphne-{n}.log") for n in (1, 2)]
        try:
            seen = asyncio.run(conversation_in_two_processes([host for _, host in daphnes], fixture["cookie"],
                                                             fixture["chat"], server))
        finally:
            for process, _ in daphnes:
                stop_process(process)

    for n in (0, 1):
        writer, watcher = seen[f"writer {n}"], seen[f"watcher {n}"]
        assert len([f for f in writer if f["type"] == "delta"]) >= 5 and writer[-1]["status"] == "complete"
        assert [(f["role"], f["id"]) for f in watcher] == [
            ("user", next(f["id"] for f in writer if f["type"] == "user")), ("assistant", writer[-1]["id"])]
    assert seen["stopped"][-1]["status"] == "stopped"
    assert seen[f"message {RATE_LIMIT}"][-1]["code"] == "rate_limited"  # counted across both processes
    assert saved_messages(services_env, fixture["chat"]) == (
        [("user", "complete"), ("assistant", "complete")] * 2 + [("user", "complete"), ("assistant", "stopped")]
        + [("user", "complete"), ("assistant", "complete")] * (RATE_LIMIT - 3))
