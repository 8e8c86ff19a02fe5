"""Benchmark: 20 annotators over HTTP, each loading its next item and saving a decision; p95 of the pair.

100,000 feedback rows in the database of DATABASE_URL (PostgreSQL in make bench), one queue over them
with 20 annotators, Errata under daphne on loopback, and 20 concurrent clients (aiohttp), each signed in
with its own session, looping GET /api/reviews/next/ then POST /api/reviews/<id>/decide/.

Each simulated annotator reads for THINK_S seconds (uniform 0.5x-1.5x, seeded) between items, as a person
does; people take 10-60 s per item, so 1 s is a heavy load (20 annotators offer 20 pairs/s). A second,
shorter pass without any pause measures the saturation throughput; its latency is then set by the queue
(Little's law: 20 clients / throughput), which is reported on stderr beside the BENCH line.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_import import ensure_database  # noqa: E402

FEEDBACK = 100_000
ANNOTATORS = 20
PAIRS = 2_000
WARMUP_PAIRS = 5  # per annotator, not measured: connections, caches
GOAL_MS = 50
THINK_S = float(os.environ.get("BENCH_THINK_S", 1.0))
# `manage.py serve` with this many daphne processes sharing the port: one per core, as a deployment runs
# (WEB_PROCESSES). Python serves one request at a time per process; on 2 cores, 1 process measured p95 38-49 ms
# and p99 105-130 ms, 2 processes p95 37-39 ms and p99 54-57 ms.
WEB_PROCESSES = int(os.environ.get("BENCH_WEB_PROCESSES", os.cpu_count() or 1))
SATURATION_PAIRS = 500
DATASET = "bench-review"


def log(message: str) -> None:
    print(f"  {message}", file=sys.stderr, flush=True)


def ensure_feedback() -> int:
    """The bench's 100,000 wrong answers with one LEMA correction each; created once, reused afterwards."""
    from webapp.datasets.models import Dataset, Problem
    from webapp.gather.models import Attempt
    from webapp.runs.models import Run
    from webapp.teach.models import Feedback

    teach = Run.objects.filter(kind="teach", name=DATASET).first()
    if teach and Feedback.objects.filter(run=teach).count() == FEEDBACK:
        return teach.pk
    Dataset.objects.filter(name=DATASET).delete()
    Run.objects.filter(name=DATASET).delete()
    started = time.perf_counter()
    dataset = Dataset.objects.create(name=DATASET, benchmark="gsm8k", answer_format="number", scorer="numeric")
    gather = Run.objects.create(kind="gather", name=DATASET, config={}, status="succeeded")
    teach = Run.objects.create(kind="teach", name=DATASET, config={}, status="succeeded")
    batch = 5_000
    for start in range(0, FEEDBACK, batch):
        numbers = range(start, min(start + batch, FEEDBACK))
        problems = Problem.objects.bulk_create(Problem(
            dataset=dataset, external_id=str(i), position=i, split="train", question_hash=f"{i:064d}",
            question=f"Bench problem {i}: a crate holds {i % 97 + 3} boxes of {i % 13 + 2} pens. How many pens?",
            gold_answer=str((i % 97 + 3) * (i % 13 + 2))) for i in numbers)
        attempts = Attempt.objects.bulk_create(Attempt(
            run=gather, problem=p, model_name="student", prompt="[]", correct=False, scorer="numeric",
            raw_output=f"There are {p.gold_answer} + 1 pens.", extracted=str(int(p.gold_answer) + 1)) for p in problems)
        Feedback.objects.bulk_create(Feedback(
            run=teach, attempt=a, problem=a.problem, method="lema", teacher_name="bench teacher", raw_output="raw",
            fields={"incorrect_step": "the last step", "explanation": "one too many", "corrected_answer": a.problem.gold_answer},
            text=f"Incorrect Step: the last step\nExplanation: one too many\nCorrect Solution:\n{a.problem.gold_answer}",
            corrected_answer=a.problem.gold_answer, auto_check=(a.pk % 7 != 0)) for a in attempts)
    log(f"created {FEEDBACK:,} problems, wrong answers and feedback rows in {time.perf_counter() - started:.0f} s")
    return teach.pk


def annotators_with_sessions() -> list[tuple]:
    """20 annotators and a fresh signed-in session for each (as the sign-in page would create it)."""
    from webapp.accounts.models import User
    from webapp.accounts.services import session_sign_in, user_create

    users = []
    for i in range(ANNOTATORS):
        user = User.objects.filter(username=f"bench-annotator-{i:02d}").first()
        users.append(user or user_create(username=f"bench-annotator-{i:02d}", role="annotator"))
    return [(user, session_sign_in(user)) for user in users]


def fresh_queue(run_id: int, users: list) -> int:
    from django.db import connection

    from webapp.review.models import ReviewQueue
    from webapp.review.services import queue_create
    from webapp.teach.models import Feedback

    ReviewQueue.objects.filter(name=DATASET).delete()
    started = time.perf_counter()
    queue = queue_create(name=DATASET, feedback=Feedback.objects.filter(run_id=run_id), annotators=users, per_item=1,
                         priority="checks_first")
    log(f"queue of {FEEDBACK:,} items for {len(users)} annotators built in {time.perf_counter() - started:.1f} s")
    with connection.cursor() as cursor:  # what autovacuum does soon after a bulk insert: fresh planner statistics
        cursor.execute("ANALYZE review_review")
    return queue.pk


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_errata(port: int, log_path: Path) -> subprocess.Popen:
    # Connections come from the settings' psycopg pool (under ASGI each request runs in a thread of its own).
    env = dict(os.environ, DEBUG="0", ALLOWED_HOSTS="127.0.0.1", LOG_LEVEL="WARNING")
    with log_path.open("w") as server_log:  # errors only; a pipe nobody reads would stall the server
        server = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port),
                                   "--processes", str(WEB_PROCESSES)], cwd=REPO, env=env, stdout=server_log,
                                  stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/health/", timeout=2).status == 200:
                return server
        except OSError:
            time.sleep(0.2)
        if server.poll() is not None:
            break
    server.kill()
    raise SystemExit("daphne did not answer")


async def annotate(base: str, queue_id: int, session_key: str, seed: int, pairs: int, think_s: float,
                   timings: list[float]) -> None:
    """One annotator: next, then decide, ``pairs`` times after a short warm-up; the pair's time in ms."""
    import aiohttp

    csrf = secrets.token_hex(16)  # 32 characters: Django compares the header with the cookie
    cookies = {"sessionid": session_key, "csrftoken": csrf}
    choices = random.Random(seed)
    async with aiohttp.ClientSession(base, cookies=cookies, headers={"X-CSRFToken": csrf}) as http:
        for n in range(WARMUP_PAIRS + pairs):
            if think_s:
                await asyncio.sleep(think_s * choices.uniform(0.5, 1.5))
            started = time.perf_counter()
            async with http.get("/api/reviews/next/", params={"queue": str(queue_id)}) as response:
                assert response.status == 200, (response.status, await response.text())
                review = await response.json()
            decision = choices.choice(["approve", "approve", "approve", "reject", "edit", "skip"])
            body = {"version": review["version"], "decision": decision, "seconds": 3.5,
                    "edited_text": review["item"]["feedback"]["text"] + " (checked)" if decision == "edit" else ""}
            async with http.post(f"/api/reviews/{review['id']}/decide/", json=body) as response:
                assert response.status == 200, (response.status, await response.text())
                await response.read()
            if n >= WARMUP_PAIRS:
                timings.append((time.perf_counter() - started) * 1000)


async def load(base: str, queue_id: int, sessions: list[tuple], pairs: int, think_s: float) -> tuple[list[float], float]:
    timings: list[float] = []
    started = time.perf_counter()
    await asyncio.gather(*(annotate(base, queue_id, key, seed, pairs // len(sessions), think_s, timings)
                           for seed, (_, key) in enumerate(sessions)))
    return sorted(timings), time.perf_counter() - started


def percentile(sorted_ms: list[float], share: float) -> float:
    return sorted_ms[int(share * (len(sorted_ms) - 1))]


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    run_id = ensure_feedback()
    sessions = annotators_with_sessions()
    queue_id = fresh_queue(run_id, [user for user, _ in sessions])
    port = free_port()
    log_path = Path(tempfile.gettempdir()) / "errata-bench-review-server.log"
    server = start_errata(port, log_path)
    base = f"http://127.0.0.1:{port}"
    try:
        timings, _ = asyncio.run(load(base, queue_id, sessions, PAIRS, THINK_S))
        flat_out, flat_elapsed = asyncio.run(load(base, queue_id, sessions, SATURATION_PAIRS, 0.0))
    except AssertionError:
        log(f"the server's log: {log_path}")
        raise
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    log(f"{len(timings):,} pairs by {ANNOTATORS} annotators reading {THINK_S:g} s per item, {WEB_PROCESSES} web "
        f"process(es): median "
        f"{statistics.median(timings):.1f} ms, p95 {percentile(timings, 0.95):.1f} ms, p99 {percentile(timings, 0.99):.1f} ms")
    flat_pairs = len(flat_out) + WARMUP_PAIRS * ANNOTATORS
    log(f"no pause at all (saturation): {flat_pairs / flat_elapsed:.0f} pairs/s, median {statistics.median(flat_out):.0f} ms, "
        f"p95 {percentile(flat_out, 0.95):.0f} ms")
    print(f"BENCH review_next_submit_p95_ms {percentile(timings, 0.95):.1f} ms goal={GOAL_MS}")


if __name__ == "__main__":
    main()
