"""Benchmark: SmolLM2 answers demo problems through Errata's CPU server, concurrently vs one request at a time.

Both sides go through the same gather run code (prompts, client, scoring, database writes); only the
endpoint's concurrency differs. The one-at-a-time side answers the first 20 problems and is scaled to
the same count, to keep the bench short (its rate is steady: each request waits for the previous one).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_cpu_server import free_port, wait_until_healthy  # noqa: E402
from bench_import import ensure_database  # noqa: E402

PROBLEMS = 100
SEQUENTIAL_PROBLEMS = 20
MAX_TOKENS = 32
CONCURRENCY = 8


def start_server(port: int) -> subprocess.Popen:
    env = dict(os.environ, ERRATA_TORCH_THREADS=os.environ.get("ERRATA_TORCH_THREADS", "1"))
    return subprocess.Popen([sys.executable, "-m", "gpu_worker", "serve", "--smollm2", "smollm2", "--port", str(port)],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def timed_gather(dataset, endpoint, *, sample_size: int) -> tuple[float, int]:
    """Seconds for one gather run, and how many answers it recorded."""
    from webapp.gather.models import Attempt
    from webapp.gather.services import gather_execute, gather_launch
    from webapp.runs.models import Run

    run = gather_launch(user=None, data={
        "dataset_id": dataset.pk, "student_endpoint_id": endpoint.pk, "split": "all", "sample_size": sample_size,
        "decoding": {"max_tokens": MAX_TOKENS, "temperature": 0}, "use_cache": False,
    })
    started = time.perf_counter()
    gather_execute(run_id=run.pk)
    elapsed = time.perf_counter() - started
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    answers = Attempt.objects.filter(run=run).count()
    Run.objects.filter(pk=run.pk).delete()
    return elapsed, answers


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    from webapp.datasets.models import Dataset
    from webapp.endpoints.models import ModelEndpoint

    call_command("migrate", verbosity=0)
    call_command("load_demo", "--count", str(PROBLEMS), stdout=io.StringIO())
    dataset = Dataset.objects.get(name__startswith="Errata demo")
    port = free_port()
    server = start_server(port)
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", server)
        endpoint, _ = ModelEndpoint.objects.update_or_create(
            name="bench smollm2", defaults={"base_url": f"http://127.0.0.1:{port}/v1", "model_name": "smollm2",
                                            "as_student": True, "max_concurrency": CONCURRENCY})
        batched_s, answers = timed_gather(dataset, endpoint, sample_size=PROBLEMS)
        endpoint.max_concurrency = 1
        endpoint.save()
        one_s, one_answers = timed_gather(dataset, endpoint, sample_size=SEQUENTIAL_PROBLEMS)
    finally:
        server.terminate()
        server.wait(timeout=30)
    batched_rate, one_rate = answers / batched_s, one_answers / one_s
    print(f"# {answers} answers in {batched_s:.1f} s at concurrency {CONCURRENCY}; "
          f"{one_answers} one at a time in {one_s:.1f} s", file=sys.stderr)
    print(f"BENCH gather_attempts_per_s {batched_rate:.2f} attempts/s")
    print(f"BENCH gather_attempts_per_s_one_at_a_time {one_rate:.2f} attempts/s")
    print(f"BENCH gather_batching_speedup {batched_rate / one_rate:.2f} ratio goal=2")


if __name__ == "__main__":
    main()
