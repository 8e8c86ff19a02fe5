"""ModelClient over real HTTP against the fake server: chat, completions, streaming, n samples, params."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.models import ChatRequest, EndpointConfig, ModelClient, ModelError, RunUsage, chat_once
from tests.fakeopenai import answer_text


def endpoint_for(server, **changes) -> EndpointConfig:
    settings = dict(name="fake", base_url=server.base_url, model="fake-model", timeout_s=5.0, max_retries=3)
    return EndpointConfig(**{**settings, **changes})


def ask(content: str, **fields) -> ChatRequest:
    return ChatRequest(messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": content}], **fields)


def client_for(server, **changes) -> ModelClient:
    return ModelClient(endpoint_for(server, **changes), retry_base_s=0.01, retry_max_s=0.05)


@pytest.mark.asyncio
async def test_chat_answers_its_own_request_and_counts_tokens_and_cost(fake_openai):
    async with client_for(fake_openai, price_in_per_1k=2.0, price_out_per_1k=10.0) as client:
        result = await client.chat(ask("What is 2 + 2?", key="problem 1"))
    assert result.ok and result.key == "problem 1" and result.attempts == 1 and not result.cached
    assert result.texts == [answer_text("What is 2 + 2?")] and result.finish_reasons == ["stop"]
    assert result.prompt_tokens > 0 and result.completion_tokens == len(result.texts[0].split())
    assert result.cost == pytest.approx(result.prompt_tokens / 1000 * 2.0 + result.completion_tokens / 1000 * 10.0)
    assert client.usage.as_dict() == {"requests": 1, "answered": 1, "failed": 0, "cached": 0, "attempts": 1,
                                      "prompt_tokens": result.prompt_tokens,
                                      "completion_tokens": result.completion_tokens, "cost": result.cost}
    [body] = fake_openai.bodies()
    assert body["model"] == "fake-model" and body["messages"][-1] == {"role": "user", "content": "What is 2 + 2?"}


@pytest.mark.asyncio
async def test_completions_answer_the_prompt(fake_openai):
    async with client_for(fake_openai) as client:
        result = await client.complete("Q: 3 + 4 = ?\nA:", n=2, key="c")
    assert result.ok and result.texts == [answer_text("Q: 3 + 4 = ?\nA:", i) for i in range(2)]
    assert fake_openai.stats()["received"] == {"completion": 1}


@pytest.mark.asyncio
async def test_streaming_arrives_in_several_pieces(fake_openai):
    fake_openai.configure(stream_chunks=5)
    usage = RunUsage()
    async with ModelClient(endpoint_for(fake_openai), usage=usage) as client:
        pieces = [piece async for piece in client.stream_chat(ask("Tell me a story."))]
    assert len(pieces) >= 4 and "".join(pieces) == answer_text("Tell me a story.")
    assert fake_openai.stats()["received"] == {"chat_stream": 1}
    assert usage.answered == 1 and usage.completion_tokens == len("".join(pieces).split())


@pytest.mark.asyncio
async def test_streaming_retries_until_the_first_piece_then_reports_a_failure_plainly(fake_openai):
    fake_openai.configure(fail_first=2, faults=["500"])
    async with client_for(fake_openai) as client:
        pieces = [piece async for piece in client.stream_chat(ask("Once upon a time"))]
        assert "".join(pieces) == answer_text("Once upon a time")
        fake_openai.configure(fail_first=99, faults=["reset"])
        with pytest.raises(ModelError) as failure:
            [piece async for piece in client.stream_chat(ask("Never answered"))]
    assert failure.value.reason == "connection reset (gave up after 4 attempts)"
    assert client.usage.answered == 1 and client.usage.failed == 1


@pytest.mark.asyncio
async def test_a_consumer_that_stops_early_frees_the_slot(fake_openai):
    async with client_for(fake_openai, max_concurrency=1) as client:
        async for _ in client.stream_chat(ask("long story")):
            break
        result = await asyncio.wait_for(client.chat(ask("next")), 5)
    assert result.ok


@pytest.mark.asyncio
async def test_n_samples_come_in_one_request(fake_openai):
    async with client_for(fake_openai) as client:
        result = await client.chat(ask("Pick a number", n=3))
    assert result.texts == [answer_text("Pick a number", i) for i in range(3)]
    assert fake_openai.stats()["received"] == {"chat": 1} and fake_openai.bodies()[0]["n"] == 3


@pytest.mark.asyncio
async def test_n_is_filled_up_when_the_server_ignores_it(fake_openai):
    fake_openai.configure(n_supported=False)
    async with client_for(fake_openai) as client:
        result = await client.chat(ask("Pick a number", n=3, params={"seed": 7}))
    assert result.ok and len(result.texts) == 3 and result.attempts == 3
    # Each extra request moves the seed on, so the samples are not copies of one another.
    assert [body["seed"] for body in fake_openai.bodies()] == [7, 8, 9]
    assert len(set(result.texts)) == 3


@pytest.mark.asyncio
async def test_decoding_params_are_passed_through_and_override_the_defaults(fake_openai):
    defaults = {"temperature": 0.2, "top_p": 0.9, "max_tokens": 100, "seed": 1}
    async with client_for(fake_openai, default_params=defaults) as client:
        result = await client.chat(ask("Explain.", params={"temperature": 0.7, "stop": [" sample"], "top_k": 20}))
    [body] = fake_openai.bodies()
    assert {k: body[k] for k in ("temperature", "top_p", "max_tokens", "seed", "stop", "top_k")} == {
        "temperature": 0.7, "top_p": 0.9, "max_tokens": 100, "seed": 1, "stop": [" sample"], "top_k": 20}
    # The server honoured the stop sequence: the answer ends where " sample" began.
    assert result.texts == [answer_text("Explain.", seed=1).split(" sample")[0]]


@pytest.mark.asyncio
async def test_max_tokens_cut_shows_as_finish_reason_length(fake_openai):
    async with client_for(fake_openai) as client:
        result = await client.chat(ask("Explain at length.", params={"max_tokens": 3}))
    assert result.finish_reasons == ["length"] and len(result.texts[0].split()) == 3


@pytest.mark.asyncio
async def test_chat_many_keeps_request_order_and_reports_each_result(fake_openai):
    fake_openai.configure(latency_s=0.01)
    requests = [ask(f"question {i}", key=f"q{i}") for i in range(40)]
    seen = []
    async with client_for(fake_openai, max_concurrency=8) as client:
        results = await client.chat_many(requests, on_result=seen.append)
    assert [r.key for r in results] == [f"q{i}" for i in range(40)]
    assert all(r.texts == [answer_text(f"question {i}")] for i, r in enumerate(results))
    assert sorted(r.key for r in seen) == sorted(r.key for r in results)


@pytest.mark.asyncio
async def test_an_error_in_the_progress_callback_reaches_the_caller_as_it_is(fake_openai):
    def explode(result):
        raise LookupError(f"progress for {result.key} went wrong")

    async with client_for(fake_openai) as client:
        with pytest.raises(LookupError):
            await client.chat_many([ask(f"q{i}", key=str(i)) for i in range(5)], on_result=explode)


@pytest.mark.asyncio
async def test_the_key_is_read_from_its_variable_at_call_time(fake_openai, monkeypatch):
    fake_openai.configure(api_key="sk-right")
    monkeypatch.setenv("ERRATA_TEST_MODEL_KEY", "sk-right")
    async with client_for(fake_openai, api_key_env="ERRATA_TEST_MODEL_KEY") as client:
        assert (await client.chat(ask("hi"))).ok
        monkeypatch.delenv("ERRATA_TEST_MODEL_KEY")
        missing = await client.chat(ask("hi again"))
    assert missing.error == ("the environment variable ERRATA_TEST_MODEL_KEY (which should hold the API key) "
                             "is not set") and missing.attempts == 0
    assert fake_openai.stats()["received"] == {"chat": 1}


def test_chat_once_works_from_plain_sync_code(fake_openai):
    result = chat_once(endpoint_for(fake_openai), [{"role": "user", "content": "ping"}], max_tokens=2)
    assert result.ok and result.texts == [" ".join(answer_text("ping").split()[:2])]
    assert fake_openai.bodies()[0]["max_tokens"] == 2


@pytest.mark.asyncio
async def test_chat_once_works_inside_a_running_event_loop(fake_openai):
    result = chat_once(endpoint_for(fake_openai), [{"role": "user", "content": "ping"}])
    assert result.ok


def test_chat_once_explains_a_server_that_is_not_there():
    endpoint = EndpointConfig("gone", "http://127.0.0.1:9/v1", "m", max_retries=0, timeout_s=2)
    result = chat_once(endpoint, [{"role": "user", "content": "ping"}])
    assert not result.ok and result.error.startswith("could not connect to the server")


def test_importing_the_package_leaves_the_openai_library_unloaded():
    """Django imports EndpointConfig at startup; the openai library loads only with ModelClient."""
    code = "import sys, pipeline.models; assert 'openai' not in sys.modules; pipeline.models.ModelClient"
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], check=True)
