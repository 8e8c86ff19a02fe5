"""Benchmark: import 100,000 GSM8K-format problems into the database of DATABASE_URL (PostgreSQL in make bench)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROWS = 100_000
GOAL = 20_000


def write_gsm8k_file(path: Path, rows: int) -> None:
    with path.open("w") as out:
        for i in range(rows):
            a, b = i % 97 + 3, i % 13 + 2
            question = f"Bench problem {i}: a crate holds {a} boxes of {b} pens each. How many pens are there?"
            answer = f"There are {a} * {b} = <<{a}*{b}={a * b}>>{a * b} pens.\n#### {a * b}"
            out.write(json.dumps({"question": question, "answer": answer}) + "\n")


def ensure_database() -> None:
    """Create the bench database on PostgreSQL when it does not exist yet."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return
    import psycopg
    from urllib.parse import urlparse

    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command

    from webapp.datasets.models import Dataset
    from webapp.datasets.services import ImportOptions, dataset_import_create, dataset_import_run

    call_command("migrate", verbosity=0)
    Dataset.objects.filter(name="bench-import").delete()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.jsonl"
        write_gsm8k_file(path, ROWS)
        started = time.perf_counter()
        job = dataset_import_create(user=None, options=ImportOptions(dataset_name="bench-import", format="gsm8k"),
                                    paths=[path])
        job = dataset_import_run(import_id=job.pk)
        elapsed = time.perf_counter() - started
    assert job.problems_added == ROWS, job.error
    Dataset.objects.filter(name="bench-import").delete()
    print(f"BENCH import_rows_per_s {ROWS / elapsed:.0f} rows/s goal={GOAL}")


if __name__ == "__main__":
    main()
