"""Loaded before Django (pytest -p): the environment every test run starts from."""

import os

os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECRET_KEY", "tests-only-secret-key-not-for-production")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # with the other core busy, two threads ran 20x slower
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# One folder per test session (SQLite test database, local broker, uploads), inherited by the
# workers and servers the tests start: two test runs on one machine never share a database file.
os.environ.setdefault("ERRATA_DATA_DIR", os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var", "test", f"session-{os.getpid()}"))
