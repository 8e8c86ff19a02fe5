"""A persistent response cache in one SQLite file (WAL), safe to share between processes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from .endpoint import EndpointConfig


def cache_key(endpoint: EndpointConfig, *, kind: str, prompt: object, params: dict, n: int, sample_index: int) -> str:
    """sha256 of the canonical JSON of everything that decides an answer.

    ``prompt`` is the message list (chat) or the prompt string (completion); ``params`` are the
    merged decoding settings, the seed among them.
    """
    document = {
        "endpoint": endpoint.name,
        "base_url": endpoint.base_url.rstrip("/"),
        "model": endpoint.model,
        "kind": kind,
        "prompt": prompt,
        "params": params,
        "seed": params.get("seed"),
        "n": n,
        "sample_index": sample_index,
    }
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


class ResponseCache:
    """key -> JSON value in a SQLite file. Each process (and thread) opens its own connection;
    WAL lets readers and one writer work at once, and ``busy_timeout`` queues writers."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._connection() as db:
            db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)")

    def _connection(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None or self._local.pid != os.getpid():  # never reuse a connection across fork
            db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; a power cut may lose the last answers
            self._local.db, self._local.pid = db, os.getpid()
        return db

    def get(self, key: str) -> dict | None:
        row = self._connection().execute("SELECT value FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, value: dict) -> None:
        self._connection().execute(
            "INSERT OR REPLACE INTO responses (key, value, created) VALUES (?, ?, ?)",
            (key, json.dumps(value, ensure_ascii=False), time.time()),
        )

    def __len__(self) -> int:
        return self._connection().execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None
