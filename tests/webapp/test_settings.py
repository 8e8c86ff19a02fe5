"""Settings come from the environment; a bad value stops start-up with a message that says what to fix."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO


def start_django(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY"}}
    clean.update(env)
    code = ("import django; django.setup(); from django.conf import settings; "
            "print(settings.DATABASES['default']['ENGINE'], settings.CELERY_BROKER_URL.split(':')[0], "
            "settings.CHANNEL_LAYERS['default']['BACKEND'], "
            "settings.DATABASES['default'].get('OPTIONS', {}).get('prepare_threshold'))")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("env,message", [
    ({"DEBUG": "maybe", "SECRET_KEY": "x"}, "DEBUG='maybe' is not a boolean"),
    ({"DEBUG": "0"}, "SECRET_KEY must be set when DEBUG is off"),
    ({"DEBUG": "1", "DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL must be a URL starting with one of"),
    ({"DEBUG": "1", "REDIS_URL": "http://localhost:6379"}, "REDIS_URL must be a URL starting with one of"),
    ({"DEBUG": "1", "ERRATA_MODEL_CONCURRENCY": "lots"}, "ERRATA_MODEL_CONCURRENCY='lots' is not a whole number"),
    ({"DEBUG": "1", "ERRATA_MODEL_CONCURRENCY": "0"}, "ERRATA_MODEL_CONCURRENCY=0 must be at least 1"),
    ({"DEBUG": "0", "SECRET_KEY": "x", "ERRATA_DEMO": "1"}, "ERRATA_DEMO=1 creates users with known passwords"),
])
def test_a_bad_value_fails_at_start_with_a_clear_message(env, message):
    result = start_django(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_embedded_defaults_without_urls():
    result = start_django(DEBUG="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "filesystem", "channels.layers.InMemoryChannelLayer", "None"]


def test_urls_switch_to_postgresql_and_redis():
    result = start_django(DEBUG="1", DATABASE_URL="postgres://u@db.example:5432/errata", REDIS_URL="redis://cache:6379/0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.postgresql", "redis", "channels_redis.core.RedisChannelLayer", "2"]


def test_prepared_statements_can_be_turned_off_for_pgbouncer():
    result = start_django(DEBUG="1", DATABASE_URL="postgres://u@db.example:5432/errata", DB_PREPARED_STATEMENTS="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "None"
