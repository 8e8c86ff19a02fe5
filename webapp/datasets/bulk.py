"""Fast, idempotent inserts of many problems: COPY on PostgreSQL, bulk_create on the embedded SQLite."""

from __future__ import annotations

import json
from typing import Iterable

from django.db import connection

from webapp.datasets.models import Problem

WRITE_BATCH = 2000
# Every column but the id, in the order the rows below are built.
COLUMNS = ("dataset_id", "external_id", "position", "split", "task", "question", "choices", "gold_answer",
           "gold_rationale", "metadata", "question_hash")


def insert_problems(rows: Iterable[tuple]) -> None:
    """Insert rows (tuples in COLUMNS order); a row whose (dataset, external_id) exists is skipped."""
    if connection.vendor == "postgresql":
        _copy_insert(rows)
    else:
        _bulk_create(rows)


def _copy_insert(rows: Iterable[tuple]) -> None:
    # The ORM spends most of an import preparing values one by one; COPY streams them and the
    # unique constraint does the skipping in one INSERT ... ON CONFLICT DO NOTHING.
    table = Problem._meta.db_table
    columns = ", ".join(COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE problem_import ON COMMIT DROP AS SELECT {columns} FROM {table} WITH NO DATA")
        with cursor.cursor.copy(f"COPY problem_import ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(_json_columns_as_text(row))
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {columns} FROM problem_import "
            "ON CONFLICT (dataset_id, external_id) DO NOTHING"
        )
        cursor.execute("DROP TABLE problem_import")


EMPTY_JSON = {COLUMNS.index("choices"): "[]", COLUMNS.index("metadata"): "{}"}


def _json_columns_as_text(row: tuple) -> tuple:
    values = list(row)
    for index in (COLUMNS.index("choices"), COLUMNS.index("metadata")):
        values[index] = json.dumps(values[index]) if values[index] else EMPTY_JSON[index]
    return tuple(values)


def _bulk_create(rows: Iterable[tuple]) -> None:
    batch: list[Problem] = []
    for row in rows:
        batch.append(Problem(**dict(zip(COLUMNS, row))))
        if len(batch) >= WRITE_BATCH:
            Problem.objects.bulk_create(batch, ignore_conflicts=True)
            batch.clear()
    if batch:
        Problem.objects.bulk_create(batch, ignore_conflicts=True)
