"""The chat websocket against Errata's own model server on a real (tiny) model over HTTP: the answer arrives in
pieces as the model decodes them and is saved whole; stop cancels the generation inside the model server."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async

from tests.conftest import wait_for
from tests.gpu_worker.tiny import build_tiny_model, serve_in_thread
from tests.webapp.chat.conftest import chat_socket, conversation, frames_until
from webapp.chat.models import ChatMessage
from webapp.endpoints.models import ModelEndpoint

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]
# The tiny model may pick its end token early by chance: ignore_eos (vLLM's extension, honoured by Errata's server)
# makes answers exactly max_tokens long (the system prompt and question take ~290 of its 1,024 tokens).
SHORT = {"max_tokens": 12, "temperature": 0, "ignore_eos": True}
LONG = {"max_tokens": 600, "temperature": 0, "ignore_eos": True}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    from gpu_worker.engine import Engine, ModelSpec

    folder = build_tiny_model(tmp_path_factory.mktemp("tiny-chat-model"))
    with Engine([ModelSpec("tiny", str(folder))], max_batch_size=4, batch_window_ms=5, num_threads=1) as engine:
        yield engine


@pytest.fixture(scope="module")
def model_server(engine):
    from gpu_worker.server import create_app

    with serve_in_thread(create_app(engine)) as url:
        yield f"{url}/v1"


def tiny_chat(owner, model_server: str, params: dict):
    endpoint = ModelEndpoint.objects.create(name=f"tiny {params['max_tokens']}", base_url=model_server,
                                            model_name="tiny", as_student=False, as_assistant=True,
                                            default_params=params)
    return conversation(owner, endpoint)


async def test_the_answer_streams_token_by_token_from_a_real_model(model_server, engine, annotator):
    chat = await database_sync_to_async(tiny_chat)(annotator, model_server, SHORT)
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "Why is 15 + 17 not 22?"})
        frames = await frames_until(socket, "done", timeout=60)
    deltas = [frame["text"] for frame in frames if frame["type"] == "delta"]
    done = frames[-1]
    assert done["status"] == "complete" and done["tokens"] == 12
    assert len(deltas) >= 3  # token by token, not one block at the end
    saved = await database_sync_to_async(ChatMessage.objects.get)(pk=done["id"])
    assert saved.content == "".join(deltas) and saved.tokens == 12


async def test_stop_cancels_the_generation_in_the_model_server(model_server, engine, annotator):
    chat = await database_sync_to_async(tiny_chat)(annotator, model_server, LONG)
    cancelled_before = engine.stats()["rows_cancelled"]
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "Tell me everything."})
        for _ in range(3):
            await frames_until(socket, "delta", timeout=60)
        await socket.send_json_to({"type": "stop"})
        done = (await frames_until(socket, "done", timeout=30))[-1]
    assert done["status"] == "stopped"
    await asyncio.to_thread(wait_for, lambda: engine.stats()["rows_cancelled"] > cancelled_before, timeout=10,
                            what="the model server to cancel the row")
    await asyncio.to_thread(wait_for, lambda: engine.stats()["active_rows"] == 0, timeout=10,
                            what="no rows decoding")
    saved = await database_sync_to_async(ChatMessage.objects.get)(pk=done["id"])
    assert saved.status == "stopped" and 0 < len(saved.content)
