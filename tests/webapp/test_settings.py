"""Settings come from the environment; a bad value stops start-up with a message that says what to fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

FROM_THE_TEST_RUN = {"DATABASE_URL", "REDIS_URL", "DEBUG", "SECRET_KEY", "ERRATA_BROKER_VISIBILITY_TIMEOUT_S",
                     "ERRATA_BEHIND_PROXY"}
# What a process started with this environment ends up with, including both Celery apps (they share the broker).
PROBE = """
import json
import django
django.setup()
from django.conf import settings
from gpu_worker.celery_app import app as gpu_app
from webapp.celery import app as web_app
database = settings.DATABASES["default"]
print(json.dumps({
    "database": database["ENGINE"], "prepare_threshold": database.get("OPTIONS", {}).get("prepare_threshold"),
    "broker": settings.CELERY_BROKER_URL.split(":")[0], "channel_layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "web_transport": web_app.conf.broker_transport_options, "gpu_transport": gpu_app.conf.broker_transport_options,
    "proxy_ssl_header": settings.SECURE_PROXY_SSL_HEADER,
}))
"""


def start_django(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in FROM_THE_TEST_RUN}
    clean.update(env)
    return subprocess.run([sys.executable, "-c", PROBE], cwd=REPO, env=clean, capture_output=True, text=True, timeout=60)


def started(**env: str) -> dict:
    result = start_django(**env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("env,message", [
    ({"DEBUG": "maybe", "SECRET_KEY": "x"}, "DEBUG='maybe' is not a boolean"),
    ({"DEBUG": "0"}, "SECRET_KEY must be set when DEBUG is off"),
    ({"DEBUG": "1", "DATABASE_URL": "mysql://root@localhost/x"}, "DATABASE_URL must be a URL starting with one of"),
    ({"DEBUG": "1", "REDIS_URL": "http://localhost:6379"}, "REDIS_URL must be a URL starting with one of"),
    ({"DEBUG": "1", "ERRATA_MODEL_MAX_RETRIES": "lots"}, "ERRATA_MODEL_MAX_RETRIES='lots' is not a whole number"),
    ({"DEBUG": "1", "ERRATA_MAX_UPLOAD_MB": "0"}, "ERRATA_MAX_UPLOAD_MB=0 must be at least 1"),
    ({"DEBUG": "0", "SECRET_KEY": "x", "ERRATA_DEMO": "1"}, "ERRATA_DEMO=1 creates users with known passwords"),
    # Shorter than kombu's own hour would hand running jobs out twice sooner, not later.
    ({"DEBUG": "1", "REDIS_URL": "redis://cache:6379/0", "ERRATA_BROKER_VISIBILITY_TIMEOUT_S": "600"},
     "ERRATA_BROKER_VISIBILITY_TIMEOUT_S=600 must be at least 3600"),
])
def test_a_bad_value_fails_at_start_with_a_clear_message(env, message):
    result = start_django(**env)
    assert result.returncode != 0
    assert message in result.stderr


def test_embedded_defaults_without_urls():
    facts = started(DEBUG="1")
    assert (facts["database"], facts["broker"], facts["channel_layer"], facts["prepare_threshold"]) == (
        "django.db.backends.sqlite3", "filesystem", "channels.layers.InMemoryChannelLayer", None)
    # The filesystem transport has no visibility timeout; neither app gives it one.
    assert "visibility_timeout" not in facts["web_transport"] and "visibility_timeout" not in facts["gpu_transport"]
    assert facts["web_transport"] == facts["gpu_transport"]  # the same queue folders
    assert facts["proxy_ssl_header"] is None  # no proxy is trusted unless told


def test_urls_switch_to_postgresql_and_redis():
    facts = started(DEBUG="1", DATABASE_URL="postgres://u@db.example:5432/errata", REDIS_URL="redis://cache:6379/0")
    assert (facts["database"], facts["broker"], facts["channel_layer"], facts["prepare_threshold"]) == (
        "django.db.backends.postgresql", "redis", "channels_redis.core.RedisChannelLayer", 2)
    # The gpu worker reads the broker's settings on its own: the two defaults must agree (48 hours).
    assert facts["web_transport"] == facts["gpu_transport"] == {"visibility_timeout": 48 * 3600}


def test_both_celery_apps_give_redis_the_visibility_timeout_of_the_environment():
    facts = started(DEBUG="1", REDIS_URL="redis://cache:6379/0", ERRATA_BROKER_VISIBILITY_TIMEOUT_S="259200")
    assert facts["web_transport"] == facts["gpu_transport"] == {"visibility_timeout": 259200}


def test_prepared_statements_can_be_turned_off_for_pgbouncer():
    facts = started(DEBUG="1", DATABASE_URL="postgres://u@db.example:5432/errata", DB_PREPARED_STATEMENTS="0")
    assert facts["prepare_threshold"] is None


def test_behind_a_proxy_https_comes_from_x_forwarded_proto():
    facts = started(DEBUG="0", SECRET_KEY="x", ERRATA_BEHIND_PROXY="1")
    assert facts["proxy_ssl_header"] == ["HTTP_X_FORWARDED_PROTO", "https"]
