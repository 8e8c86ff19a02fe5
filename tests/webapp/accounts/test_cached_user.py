"""The signed-in user comes from the cache between requests, and a saved change reaches the next request at once."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webapp.accounts.models import Role


def user_queries(client, url: str) -> tuple[int, int]:
    with CaptureQueriesContext(connection) as queries:
        status = client.get(url).status_code
    return status, sum('FROM "accounts_user"' in query["sql"] for query in queries.captured_queries)


def test_a_signed_in_user_is_loaded_once_then_from_the_cache(client, researcher):
    client.force_login(researcher, backend=settings.AUTHENTICATION_BACKENDS[0])
    assert user_queries(client, "/api/datasets/") == (200, 1)
    assert user_queries(client, "/api/datasets/") == (200, 0)


def test_a_role_change_applies_to_the_next_request(client, researcher):
    client.force_login(researcher, backend=settings.AUTHENTICATION_BACKENDS[0])
    assert client.get("/api/datasets/").status_code == 200  # cached as a researcher
    researcher.role = Role.ANNOTATOR
    researcher.save()
    assert client.get("/api/gather-runs/").status_code == 403


def test_a_deactivated_user_is_signed_out_on_the_next_request(client, researcher):
    client.force_login(researcher, backend=settings.AUTHENTICATION_BACKENDS[0])
    assert client.get("/api/datasets/").status_code == 200
    researcher.is_active = False
    researcher.save()
    assert client.get("/api/datasets/").status_code in (401, 403)


def test_sessions_of_plain_model_backend_still_sign_in(client, researcher):
    client.force_login(researcher, backend="django.contrib.auth.backends.ModelBackend")
    assert client.get("/api/datasets/").status_code == 200
