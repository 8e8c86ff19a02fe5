"""ModelClient against a misbehaving server: retries, Retry-After, plain failure reasons, bounded concurrency."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx2
import openai
import pytest

from pipeline.models import ChatRequest, EndpointConfig, ModelClient, ResponseCache, RunUsage
from pipeline.models.failures import parse_retry_after, status_failure
from tests.fakeopenai import FAULT_KINDS, answer_text

SECRET = "sk-test-9f8e7d6c5b4a-DO-NOT-SHOW"


def endpoint_for(server, **changes) -> EndpointConfig:
    settings = dict(name="fake", base_url=server.base_url, model="fake-model", timeout_s=5.0, max_retries=3)
    return EndpointConfig(**{**settings, **changes})


def ask(content: str, key: str = "") -> ChatRequest:
    return ChatRequest(messages=[{"role": "user", "content": content}], key=key)


@pytest.mark.asyncio
async def test_a_thousand_requests_with_every_fault_lose_nothing_and_the_cache_makes_a_rerun_free(fake_openai, tmp_path):
    fake_openai.configure(latency_s=0.005, fault_rate=0.2, faults=list(FAULT_KINDS), retry_after="0.05", seed=3)
    endpoint = endpoint_for(fake_openai, max_concurrency=64, timeout_s=2.0, max_retries=5,  # hangs time out; a busy machine does not
                            price_in_per_1k=1.0, price_out_per_1k=2.0)
    requests = [ask(f"Problem {i}: what is {i} * 3?", key=f"problem {i}") for i in range(1000)]
    cache = ResponseCache(tmp_path / "cache.sqlite3")

    first = RunUsage()
    async with ModelClient(endpoint, cache=cache, usage=first, retry_base_s=0.01, retry_max_s=0.1) as client:
        results = await client.chat_many(requests)
    stats = fake_openai.stats()

    assert [r.key for r in results] == [r.key for r in requests]
    answered = [r for r in results if r.ok]
    for request, result in zip(requests, results):
        if result.ok:  # the right answer for its own request, not a neighbour's
            assert result.texts == [answer_text(request.messages[-1]["content"])]
        else:
            assert result.texts == [] and result.error
    # Every kind of fault happened, and every attempt the client counted reached the server.
    assert set(stats["outcomes"]) == {"ok", *FAULT_KINDS}
    assert stats["received"] == {"chat": sum(r.attempts for r in results)}
    assert stats["outcomes"]["ok"] == len(answered)
    assert 0.15 < 1 - stats["outcomes"]["ok"] / stats["received"]["chat"] < 0.25
    # None duplicated: the server answered each request at most once, and only the answered ones.
    assert stats["answered_by_content"] == {r.messages[-1]["content"]: 1 for r, res in zip(requests, results) if res.ok}
    assert first.requests == 1000 and first.answered == len(answered) and first.failed == 1000 - len(answered)
    assert len(answered) >= 995 and first.cost > 0

    fake_openai.configure(latency_s=0.005, fault_rate=0.2, faults=list(FAULT_KINDS), retry_after="0.05", seed=3)
    second = RunUsage()
    async with ModelClient(endpoint, cache=cache, usage=second, retry_base_s=0.01, retry_max_s=0.1) as client:
        again = await client.chat_many(requests)
    assert [r.texts for r in again if r.cached] == [r.texts for r in answered]
    assert second.cached == len(answered) and second.cost == sum(r.cost for r in again if not r.cached)
    if len(answered) == 1000:  # with seed 3 every request is answered in the first run
        assert fake_openai.stats()["received"] == {} and second.cost == 0


@pytest.mark.asyncio
async def test_retry_after_is_honoured(fake_openai):
    fake_openai.configure(fail_first=1, faults=["429"], retry_after="1")
    async with ModelClient(endpoint_for(fake_openai), retry_base_s=0.01) as client:
        started = time.perf_counter()
        result = await client.chat(ask("rate limited"))
        waited = time.perf_counter() - started
    assert result.ok and result.attempts == 2 and waited >= 1.0


@pytest.mark.asyncio
async def test_retry_after_is_capped_by_retry_max_s(fake_openai):
    fake_openai.configure(fail_first=1, faults=["429"], retry_after="30")
    async with ModelClient(endpoint_for(fake_openai), retry_base_s=0.01, retry_max_s=0.2) as client:
        started = time.perf_counter()
        result = await client.chat(ask("rate limited for long"))
    assert result.ok and 0.2 <= time.perf_counter() - started < 5


def test_retry_after_may_be_an_http_date():
    in_three_seconds = email.utils.formatdate(time.time() + 3, usegmt=True)
    assert 1.5 < parse_retry_after({"retry-after": in_three_seconds}) <= 3.0
    assert parse_retry_after({"retry-after": "2.5"}) == 2.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "soon"}) is None and parse_retry_after({}) is None


@pytest.mark.asyncio
async def test_a_wrong_key_is_not_retried_and_the_reason_never_shows_the_key(fake_openai, monkeypatch):
    fake_openai.configure(api_key="sk-the-right-one")  # this server repeats the wrong key in its message
    monkeypatch.setenv("ERRATA_TEST_WRONG_KEY", SECRET)
    async with ModelClient(endpoint_for(fake_openai, api_key_env="ERRATA_TEST_WRONG_KEY")) as client:
        result = await client.chat(ask("hello"))
    assert not result.ok and result.attempts == 1 and fake_openai.stats()["received"] == {"chat": 1}
    assert result.error.startswith("HTTP 401: Incorrect API key provided")
    assert SECRET not in result.error and SECRET[:12] not in result.error


@pytest.mark.asyncio
async def test_a_hang_is_reported_as_a_timeout(fake_openai):
    fake_openai.configure(fail_first=99, faults=["hang"])
    async with ModelClient(endpoint_for(fake_openai, timeout_s=0.3, max_retries=1), retry_base_s=0.01) as client:
        started = time.perf_counter()
        result = await client.chat(ask("hang"))
    assert result.error == "timed out after 0.3 s (gave up after 2 attempts)" and result.texts == []
    assert 0.6 <= time.perf_counter() - started < 3


@pytest.mark.asyncio
async def test_a_permanent_500_fails_after_max_retries_plus_one_attempts(fake_openai):
    fake_openai.configure(fail_first=99, faults=["500"])
    async with ModelClient(endpoint_for(fake_openai, max_retries=4), retry_base_s=0.01) as client:
        result = await client.chat(ask("broken"))
    assert result.error == "HTTP 500 after 5 attempts: The server had an error."
    assert result.attempts == 5 and fake_openai.stats()["received"] == {"chat": 5}


@pytest.mark.parametrize("fault,reason", [
    ("reset", "connection reset (gave up after 3 attempts)"),
    ("malformed", "response was not valid JSON (gave up after 3 attempts)"),
    ("empty", "response had no choices (gave up after 3 attempts)"),
])
@pytest.mark.asyncio
async def test_other_permanent_faults_say_what_happened(fake_openai, fault, reason):
    fake_openai.configure(fail_first=99, faults=[fault])
    async with ModelClient(endpoint_for(fake_openai, max_retries=2), retry_base_s=0.01) as client:
        result = await client.chat(ask(f"always {fault}"))
    assert result.error == reason and result.texts == [] and client.usage.failed == 1


@pytest.mark.asyncio
async def test_one_fault_then_an_answer(fake_openai):
    async with ModelClient(endpoint_for(fake_openai, timeout_s=0.3), retry_base_s=0.01) as client:
        for fault in FAULT_KINDS:
            fake_openai.configure(fail_first=1, faults=[fault], retry_after="0.05")
            result = await client.chat(ask(f"once {fault}"))
            assert result.ok and result.attempts == 2, fault


@pytest.mark.asyncio
async def test_concurrency_is_bounded_per_endpoint(fake_openai):
    fake_openai.configure(latency_s=0.05)
    async with ModelClient(endpoint_for(fake_openai, max_concurrency=4)) as client:
        many = client.chat_many([ask(f"many {i}") for i in range(24)])
        single = [client.chat(ask(f"single {i}")) for i in range(8)]
        await asyncio.gather(many, *single)
    assert fake_openai.stats()["max_in_flight"] == 4


@pytest.mark.parametrize("status,retried", [
    (400, False), (401, False), (403, False), (404, False), (422, False),
    (408, True), (409, True), (429, True), (500, True), (502, True), (503, True), (504, True),
])
def test_which_statuses_are_retried(status, retried):
    response = httpx2.Response(status, request=httpx2.Request("POST", "http://127.0.0.1/v1/chat/completions"))
    failure = status_failure(openai.APIStatusError("x", response=response, body={"message": "the words"}))
    assert failure.retryable is retried and failure.reason == f"HTTP {status}: the words"
