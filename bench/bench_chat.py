"""Benchmark: chat over Errata's websocket against a fast local streaming endpoint, on loopback.

1. chat_ttft_overhead_ms: for each of 50 chats (each its own conversation and websocket, opened beforehand),
   the time from sending the message to the first piece of the answer arriving through Errata, minus the time
   to the first piece when the bench asks the same endpoint directly (the same client code, alternating with
   the chats, so both see the same machine). The median of the 50 differences.
2. chat_concurrent_sessions: 200 signed-in websockets send at once and stream their answers side by side
   (the endpoint is checked to hold 200 streams open at the same time); the largest tested count with zero
   errors (failed, refused or unfinished answers), trying 200 first, then fewer if 200 had errors.

The endpoint is tests/fakeopenai.py in its own process; Errata is daphne on the database of DATABASE_URL
(PostgreSQL in make bench), with its embedded in-memory channel layer and cache (one web process).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_import import ensure_database  # noqa: E402
from bench_review import free_port, log, start_errata  # noqa: E402

CHATS = 50
WARMUP = 5
SESSIONS = 200
FALLBACK_COUNTS = (150, 100, 50)
GOAL_MS, GOAL_SESSIONS = 15, 200
ENDPOINT = "bench chat endpoint"
USERS = "bench-chatter-"


def make_conversations(count: int, base_url: str) -> list[tuple[str, int]]:
    """``count`` users, each signed in (a session as the sign-in page makes it) with a new conversation."""
    from webapp.accounts.models import User
    from webapp.accounts.services import session_sign_in, user_create
    from webapp.chat.models import ChatSession
    from webapp.endpoints.models import ModelEndpoint

    ChatSession.objects.filter(endpoint_name=ENDPOINT).delete()
    endpoint, _ = ModelEndpoint.objects.update_or_create(name=ENDPOINT, defaults={
        "base_url": base_url, "model_name": "fake-model", "as_student": False, "as_assistant": True,
        "max_concurrency": 2 * SESSIONS, "is_active": True})
    made = []
    for i in range(count):
        user = User.objects.filter(username=f"{USERS}{i:03d}").first() or user_create(username=f"{USERS}{i:03d}",
                                                                                       role="annotator")
        chat = ChatSession.objects.create(owner=user, endpoint=endpoint, endpoint_name=ENDPOINT)
        made.append((session_sign_in(user), chat.pk))
    return made


async def open_socket(http, host: str, cookie: str, chat: int):
    return await http.ws_connect(f"ws://{host}/ws/chat/{chat}/", headers={"Origin": f"http://{host}",
                                                                         "Cookie": f"sessionid={cookie}"})


async def until_done(socket) -> tuple[float | None, dict]:
    """(seconds to the first delta, the done or error frame) for one answer."""
    started, first = time.perf_counter(), None
    while True:
        frame = json.loads((await socket.receive()).data)
        if frame["type"] == "delta" and first is None:
            first = time.perf_counter() - started
        if frame["type"] in ("done", "error"):
            return first, frame


async def direct_ttft(client, n: int) -> float:
    from pipeline.models import ChatRequest

    started = time.perf_counter()
    async for _ in client.stream_chat(ChatRequest(messages=[{"role": "user", "content": f"direct question {n}"}])):
        return time.perf_counter() - started
    raise RuntimeError("the endpoint sent nothing")


async def ttft_pairs(host: str, conversations: list[tuple[str, int]], base_url: str) -> list[tuple[float, float]]:
    """(through Errata, direct) seconds to the first piece, per chat, warm-up chats left out."""
    import aiohttp

    from pipeline.models import EndpointConfig, ModelClient

    pairs = []
    async with aiohttp.ClientSession() as http, ModelClient(EndpointConfig("direct", base_url, "fake-model")) as client:
        for n, (cookie, chat) in enumerate(conversations):
            socket = await open_socket(http, host, cookie, chat)
            direct = await direct_ttft(client, n)
            await socket.send_json({"type": "send", "content": f"chat question {n}"})
            through, frame = await until_done(socket)
            await socket.close()
            if frame.get("status") != "complete" or through is None:
                raise SystemExit(f"chat {n} failed: {frame}")
            if n >= WARMUP:
                pairs.append((through, direct))
    return pairs


async def concurrent_sessions(host: str, conversations: list[tuple[str, int]]) -> tuple[int, list[str], float]:
    """Every conversation sends at once; (errors, their descriptions, seconds for all answers)."""
    import aiohttp

    errors: list[str] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        sockets = await asyncio.gather(*(open_socket(http, host, cookie, chat) for cookie, chat in conversations))
        start = asyncio.Event()

        async def chat(n: int, socket) -> None:
            await start.wait()
            try:
                await socket.send_json({"type": "send", "content": f"concurrent question {n}"})
                async with asyncio.timeout(120):
                    _, frame = await until_done(socket)
                if frame.get("status") != "complete":
                    errors.append(f"session {n}: {frame}")
            except Exception as error:  # a dropped socket, a timeout
                errors.append(f"session {n}: {error!r}")
            finally:
                await socket.close()

        tasks = [asyncio.create_task(chat(n, socket)) for n, socket in enumerate(sockets)]
        started = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
    return len(errors), errors, time.perf_counter() - started


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    from tests.fakeopenai import FakeOpenAI

    call_command("migrate", verbosity=0)
    log_path = Path(tempfile.gettempdir()) / "errata-bench-chat-server.log"
    with FakeOpenAI(stream_chunks=8, stream_delay_s=0.0, record_bodies=False) as endpoint:
        conversations = make_conversations(SESSIONS, endpoint.base_url)
        port = free_port()
        server = start_errata(port, log_path)
        host = f"127.0.0.1:{port}"
        try:
            pairs = asyncio.run(ttft_pairs(host, conversations[: CHATS + WARMUP], endpoint.base_url))
            # Answers that take a while to write, so that every session is streaming at the same time.
            endpoint.configure(stream_chunks=20, stream_delay_s=0.05, record_bodies=False)
            fresh = make_conversations(SESSIONS, endpoint.base_url)
            best = 0
            for count in (SESSIONS, *FALLBACK_COUNTS):
                endpoint.configure(stream_chunks=20, stream_delay_s=0.05, record_bodies=False)
                errors, described, seconds = asyncio.run(concurrent_sessions(host, fresh[:count]))
                held = endpoint.stats()["max_in_flight"]
                log(f"{count} sessions at once: {errors} errors, all answered in {seconds:.1f} s, "
                    f"the endpoint held {held} streams at once")
                for line in described[:5]:
                    log(line)
                if errors == 0 and held >= count:
                    best = count
                    break
        finally:
            server.terminate()
            server.wait(timeout=15)
    overheads = [(through - direct) * 1000 for through, direct in pairs]
    log(f"{len(pairs)} chats: first piece through Errata median {statistics.median(p[0] for p in pairs) * 1000:.1f} ms, "
        f"directly {statistics.median(p[1] for p in pairs) * 1000:.1f} ms; overhead p90 "
        f"{sorted(overheads)[int(0.9 * (len(overheads) - 1))]:.1f} ms; load average {os.getloadavg()[0]:.2f} "
        f"on {os.cpu_count()} cores")
    print(f"BENCH chat_ttft_overhead_ms {statistics.median(overheads):.1f} ms goal={GOAL_MS}")
    print(f"BENCH chat_concurrent_sessions {best} sessions goal={GOAL_SESSIONS}")


if __name__ == "__main__":
    main()
