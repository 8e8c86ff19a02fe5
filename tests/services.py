"""PostgreSQL and Redis for tests that start several processes: whether they can be reached, and a throwaway database.

Such tests make their own database on the server of ERRATA_TEST_DATABASE_URL (default: the local one), so they
run the same whichever database the rest of the suite uses, and skip, saying why, where a service is missing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import urlparse

PG_URL = os.environ.get("ERRATA_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/errata")


def admin_connection():
    """An autocommit connection to the server's ``postgres`` database (to create and drop databases)."""
    import psycopg

    server = urlparse(PG_URL)
    return psycopg.connect(host=server.hostname, port=server.port or 5432, user=server.username or "postgres",
                           password=server.password or None, dbname="postgres", autocommit=True, connect_timeout=3)


def unreachable(redis_url: str) -> str:
    """Why PostgreSQL or the Redis at ``redis_url`` cannot be used here ("" when both can)."""
    try:
        admin_connection().close()
    except Exception as error:
        return f"PostgreSQL at {urlparse(PG_URL).netloc} is not reachable ({type(error).__name__})"
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_connect_timeout=3).ping()
    except Exception as error:
        return f"Redis at {redis_url} is not reachable ({type(error).__name__})"
    return ""


@contextlib.contextmanager
def throwaway_database(name: str) -> Iterator[str]:
    """A new empty database ``name`` (an older one of that name is dropped first); yields its URL, drops it after."""
    with admin_connection() as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlparse(PG_URL)._replace(path=f"/{name}").geturl()
    finally:
        with admin_connection() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
