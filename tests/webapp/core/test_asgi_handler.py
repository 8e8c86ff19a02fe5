"""The ASGI handler daphne serves: the whole middleware chain and the view in one kept thread per request.

Requests go through the real handler (ASGI messages in, ASGI messages out, as daphne sends them) with a
URLconf of this module's own views, which report the thread they ran on.
"""

from __future__ import annotations

import asyncio
import inspect
import threading

import pytest
from asgiref.testing import ApplicationCommunicator
from django.contrib.auth.decorators import login_not_required
from django.core.signals import request_finished, request_started
from django.db import connection
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path

from webapp.core.handlers import SyncChainASGIHandler

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]

both_arrived = threading.Barrier(2, timeout=10)
view_started, view_release = threading.Event(), threading.Event()


@login_not_required
def thread_name(request):
    return HttpResponse(threading.current_thread().name)


@login_not_required
def wait_for_the_other(request):
    both_arrived.wait()  # two requests served on one thread would never both get here
    return HttpResponse(threading.current_thread().name)


@login_not_required
def slow(request):
    view_started.set()
    view_release.wait(10)
    return HttpResponse("late")


@login_not_required
def database(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 41 + 1")
        return HttpResponse(str(cursor.fetchone()[0]))


@login_not_required
def stream(request):
    async def pieces():
        for i in range(3):
            yield f"piece {i};"

    return StreamingHttpResponse(pieces())


@login_not_required
def broken(request):
    raise RuntimeError("a bug in a view")


urlpatterns = [path("thread/", thread_name), path("wait/", wait_for_the_other), path("slow/", slow), path("db/", database),
               path("stream/", stream), path("broken/", broken)]


@pytest.fixture
def handler(settings):
    settings.ROOT_URLCONF = __name__
    settings.DEBUG_PROPAGATE_EXCEPTIONS = False
    return SyncChainASGIHandler()


def scope_for(url: str) -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": url, "raw_path": url.encode(), "query_string": b"", "headers": [(b"host", b"testserver")],
            "client": ("127.0.0.1", 40000), "server": ("testserver", 80)}


async def get(handler, url: str) -> tuple[int, bytes]:
    communicator = ApplicationCommunicator(handler, scope_for(url))
    await communicator.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await communicator.receive_output(10)
    body = b""
    while True:
        message = await communicator.receive_output(10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await communicator.wait(10)
    return start["status"], body


async def test_a_request_runs_in_a_request_thread_and_the_next_one_reuses_it(handler):
    assert not inspect.iscoroutinefunction(handler._middleware_chain)  # loaded as WSGI loads it
    first = await get(handler, "/thread/")
    second = await get(handler, "/thread/")
    assert first[0] == second[0] == 200
    assert first[1].startswith(b"errata-request")
    assert first[1] == second[1]  # the same thread, kept between the two
    assert len(handler._idle) == 1


async def test_the_request_signals_run_in_the_views_thread(handler):
    """request_finished hands the view's database connection back: it must run where the view ran."""
    seen = []

    def started(**kwargs):
        seen.append(("started", threading.current_thread().name))

    def finished(**kwargs):
        seen.append(("finished", threading.current_thread().name))

    request_started.connect(started)
    request_finished.connect(finished)
    try:
        status, body = await get(handler, "/thread/")
    finally:
        request_started.disconnect(started)
        request_finished.disconnect(finished)
    assert status == 200
    assert seen == [("started", body.decode()), ("finished", body.decode())]


async def test_requests_at_the_same_time_get_threads_of_their_own(handler):
    results = await asyncio.wait_for(asyncio.gather(get(handler, "/wait/"), get(handler, "/wait/")), timeout=20)
    assert [status for status, _ in results] == [200, 200]
    assert results[0][1] != results[1][1]
    assert len(handler._idle) == 2
    assert (await get(handler, "/thread/"))[1] in {body for _, body in results}


async def test_no_more_idle_threads_are_kept_than_the_limit(handler, monkeypatch):
    monkeypatch.setattr("webapp.core.handlers.IDLE_THREADS_KEPT", 1)
    await asyncio.wait_for(asyncio.gather(get(handler, "/wait/"), get(handler, "/wait/")), timeout=20)
    assert len(handler._idle) == 1


async def test_a_request_given_up_while_its_view_runs_does_not_hold_up_the_next_one(handler):
    """The client leaves, daphne cancels the application: the next request must not wait behind the view."""
    view_release.clear()
    slow = ApplicationCommunicator(handler, scope_for("/slow/"))
    await slow.send_input({"type": "http.request", "body": b"", "more_body": False})
    assert await asyncio.to_thread(view_started.wait, 10)
    await slow.send_input({"type": "http.disconnect"})
    await asyncio.sleep(0.2)
    slow.future.cancel()  # what daphne does once application_close_timeout has passed
    with pytest.raises(asyncio.CancelledError):
        await slow.future
    try:
        assert handler._idle == []
        status, body = await asyncio.wait_for(get(handler, "/thread/"), timeout=3)  # not behind the slow view
        assert status == 200 and body.startswith(b"errata-request-2")
    finally:
        view_release.set()


async def test_database_views_streaming_and_errors_still_work(handler):
    assert await get(handler, "/db/") == (200, b"42")
    assert await get(handler, "/stream/") == (200, b"piece 0;piece 1;piece 2;")
    status, _ = await get(handler, "/broken/")
    assert status == 500
    assert await get(handler, "/db/") == (200, b"42")  # the thread that saw the error serves on


async def test_connections_go_back_to_the_pool_after_each_request(handler):
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's (DATABASE_URL); SQLite has none")
    for _ in range(12):
        assert await get(handler, "/db/") == (200, b"42")
    stats = connection.pool.get_stats()
    assert stats["pool_size"] - stats["pool_available"] <= 1  # at most the test's own connection is out
