"""The lean HTTP/1.1 transport under ModelClient: keep-alive, framing, and where https goes."""

from __future__ import annotations

import json

import httpx2
import openai
import pytest

from pipeline.models import ChatRequest, EndpointConfig, ModelClient
from pipeline.models.transport import LeanTransport


@pytest.mark.asyncio
async def test_connections_are_kept_alive_between_requests(fake_openai):
    async with ModelClient(EndpointConfig("fake", fake_openai.base_url, "m", max_concurrency=2)) as client:
        for i in range(10):
            assert (await client.chat(ChatRequest(messages=[{"role": "user", "content": f"q{i}"}]))).ok
    assert fake_openai.stats()["api_connections"] == 1


@pytest.mark.asyncio
async def test_a_connection_the_server_closed_is_not_reused(fake_openai):
    async with ModelClient(EndpointConfig("fake", fake_openai.base_url, "m")) as client:
        request = ChatRequest(messages=[{"role": "user", "content": "story"}])
        for _ in range(3):  # each stream ends with "connection: close"
            assert "".join([piece async for piece in client.stream_chat(request)])
            assert (await client.chat(request)).ok
    assert fake_openai.stats()["outcomes"] == {"ok": 6}


@pytest.mark.asyncio
async def test_the_official_client_lists_models_through_it(fake_openai):
    http = httpx2.AsyncClient(transport=LeanTransport())
    async with openai.AsyncOpenAI(base_url=fake_openai.base_url, api_key="EMPTY", http_client=http) as client:
        models = await client.models.list()
    assert [m.id for m in models.data] == ["fake-model"]
    assert fake_openai.stats()["received"] == {"models": 1}


@pytest.mark.asyncio
async def test_https_goes_to_the_fallback_transport():
    seen = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        seen.append(str(request.url))
        return httpx2.Response(200, json={"choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}]})

    transport = LeanTransport(fallback=httpx2.MockTransport(answer))
    async with httpx2.AsyncClient(transport=transport) as http:
        response = await http.post("https://api.example.invalid/v1/chat/completions", json={})
    assert json.loads(response.content)["choices"][0]["message"]["content"] == "hi"
    assert seen == ["https://api.example.invalid/v1/chat/completions"]


@pytest.mark.asyncio
async def test_nothing_listening_is_a_connect_error():
    async with httpx2.AsyncClient(transport=LeanTransport()) as http:
        with pytest.raises(httpx2.ConnectError):
            await http.get("http://127.0.0.1:9/v1/models")
