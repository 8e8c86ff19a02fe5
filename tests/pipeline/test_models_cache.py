"""The response cache: what its key depends on, sharing one file between processes, and a second run for free."""

from __future__ import annotations

import multiprocessing

import pytest

from pipeline.models import ChatRequest, EndpointConfig, ModelClient, ResponseCache, cache_key
from tests.fakeopenai import answer_text

ENDPOINT = EndpointConfig("teacher", "http://127.0.0.1:8001/v1", "gpt-x", default_params={"temperature": 0.0})
MESSAGES = [{"role": "user", "content": "2 + 2?"}]


def key(endpoint=ENDPOINT, *, kind="chat", prompt=MESSAGES, params=None, n=1, sample_index=0) -> str:
    return cache_key(endpoint, kind=kind, prompt=prompt, params=params or {"temperature": 0.0}, n=n, sample_index=sample_index)


def test_identical_requests_share_a_key():
    assert key() == key(prompt=[dict(m) for m in MESSAGES]) == key(params={"temperature": 0.0})
    assert key(params={"temperature": 0.5, "seed": 1}) == key(params={"seed": 1, "temperature": 0.5})


@pytest.mark.parametrize("changed", [
    dict(sample_index=1),
    dict(params={"temperature": 0.7}),
    dict(params={"temperature": 0.0, "seed": 3}),
    dict(n=4),
    dict(kind="completion"),
    dict(prompt=[{"role": "user", "content": "2 + 3?"}]),
    dict(endpoint=EndpointConfig("teacher", "http://127.0.0.1:8001/v1", "gpt-y")),
    dict(endpoint=EndpointConfig("other-name", "http://127.0.0.1:8001/v1", "gpt-x")),
    dict(endpoint=EndpointConfig("teacher", "http://10.0.0.2:8001/v1", "gpt-x")),
])
def test_the_key_changes_with_anything_that_changes_the_answer(changed):
    assert key(**changed) != key()


def test_two_cache_objects_on_one_file_see_each_other(tmp_path):
    writer, reader = ResponseCache(tmp_path / "c.sqlite3"), ResponseCache(tmp_path / "c.sqlite3")
    writer.put("k", {"texts": ["4"]})
    assert reader.get("k") == {"texts": ["4"]} and reader.get("missing") is None
    reader.put("k", {"texts": ["four"]})
    assert writer.get("k") == {"texts": ["four"]} and len(writer) == 1


def _write_many(path: str, worker: int) -> None:
    cache = ResponseCache(path)
    for i in range(200):
        cache.put(f"{worker}-{i}", {"worker": worker, "i": i})


def test_processes_can_write_to_one_cache_at_once(tmp_path):
    path = str(tmp_path / "shared.sqlite3")
    ResponseCache(path)
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(path, w)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=60)
    assert [p.exitcode for p in workers] == [0, 0, 0]
    cache = ResponseCache(path)
    assert len(cache) == 600 and cache.get("2-199") == {"worker": 2, "i": 199}


@pytest.mark.asyncio
async def test_a_cached_answer_costs_nothing_but_keeps_its_token_counts(fake_openai, tmp_path):
    endpoint = EndpointConfig("fake", fake_openai.base_url, "fake-model", price_in_per_1k=1.0, price_out_per_1k=3.0)
    cache = ResponseCache(tmp_path / "c.sqlite3")
    request = ChatRequest(messages=MESSAGES, n=2, key="p1")
    async with ModelClient(endpoint, cache=cache) as client:
        paid = await client.chat(request)
        free = await client.chat(request)
    assert free.cached and not paid.cached and free.texts == paid.texts == [answer_text("2 + 2?", i) for i in range(2)]
    assert (free.prompt_tokens, free.completion_tokens) == (paid.prompt_tokens, paid.completion_tokens)
    assert free.cost == 0 and paid.cost > 0 and free.attempts == 0 and free.key == "p1"
    assert client.usage.cost == paid.cost and client.usage.cached == 1 and client.usage.requests == 2
    assert fake_openai.stats()["received"] == {"chat": 1}


@pytest.mark.asyncio
async def test_a_new_sample_index_is_not_a_cache_hit(fake_openai, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite3")
    async with ModelClient(EndpointConfig("fake", fake_openai.base_url, "fake-model"), cache=cache) as client:
        await client.chat(ChatRequest(messages=MESSAGES, sample_index=0))
        resampled = await client.chat(ChatRequest(messages=MESSAGES, sample_index=1))
        completion = await client.complete("2 + 2?")
    assert not resampled.cached and not completion.cached
    assert fake_openai.stats()["received"] == {"chat": 2, "completion": 1}


@pytest.mark.asyncio
async def test_use_cache_false_neither_reads_nor_writes(fake_openai, tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite3")
    endpoint = EndpointConfig("fake", fake_openai.base_url, "fake-model")
    async with ModelClient(endpoint, cache=cache) as client:
        await client.chat(ChatRequest(messages=MESSAGES))
    async with ModelClient(endpoint, cache=cache, use_cache=False) as client:
        fresh = await client.chat(ChatRequest(messages=MESSAGES))
        other = await client.chat(ChatRequest(messages=[{"role": "user", "content": "new"}]))
    assert not fresh.cached and other.ok and len(cache) == 1
    assert fake_openai.stats()["received"] == {"chat": 3}


@pytest.mark.asyncio
async def test_failures_are_not_cached(fake_openai, tmp_path):
    fake_openai.configure(fail_first=1, faults=["500"])
    cache = ResponseCache(tmp_path / "c.sqlite3")
    endpoint = EndpointConfig("fake", fake_openai.base_url, "fake-model", max_retries=0)
    async with ModelClient(endpoint, cache=cache) as client:
        failed = await client.chat(ChatRequest(messages=MESSAGES))
        retried = await client.chat(ChatRequest(messages=MESSAGES))
    assert not failed.ok and retried.ok and not retried.cached and len(cache) == 1
