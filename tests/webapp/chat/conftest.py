"""Chat fixtures: a streaming fake OpenAI server as the assistant, conversations, signed-in websockets through the
real ASGI stack (origin check, session cookie, routing), and a keyword embedder and approved feedback for similar
mistakes."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.cache import cache
from django.test import Client

from tests.fakeopenai import FakeOpenAI
from tests.webapp.review.conftest import make_feedback
from webapp.chat.models import ChatSession
from webapp.endpoints.models import ModelEndpoint
from webapp.review.models import Review
from webapp.review.services import queue_create, review_submit

ORIGIN = b"http://testserver"
EMBEDDER_PATH = "tests.webapp.chat.conftest.keyword_embedder"  # for ERRATA_CHAT_EMBEDDER
STORY = "Once upon a time a student added two numbers and forgot to carry the one. " * 3


@pytest.fixture(scope="module")
def chat_server():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def server(chat_server):
    chat_server.configure(stream_chunks=6, stream_delay_s=0.005)
    return chat_server


@pytest.fixture(autouse=True)
def fresh_allowances():
    """The rate limit counts in the process's cache: each test starts with a full allowance."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def assistant(server, db) -> ModelEndpoint:
    return ModelEndpoint.objects.create(name="fake assistant", base_url=server.base_url, model_name="fake-model",
                                        as_student=False, as_assistant=True, max_concurrency=16)


def conversation(owner, endpoint: ModelEndpoint, **fields) -> ChatSession:
    return ChatSession.objects.create(owner=owner, endpoint=endpoint, endpoint_name=endpoint.name, **fields)


def session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


@pytest.fixture
def chat(assistant, annotator) -> ChatSession:
    """The annotator's conversation with the fake assistant."""
    return conversation(annotator, assistant)


async def communicator(chat_id: int, *, user=None, origin: bytes = ORIGIN) -> WebsocketCommunicator:
    """A websocket to ws/chat/<id>/ through webapp.asgi's whole stack, signed in as ``user`` (or anonymous)."""
    from webapp.asgi import application

    headers = [(b"origin", origin), (b"host", b"testserver")]
    if user is not None:
        cookie = await database_sync_to_async(session_cookie)(user)
        headers.append((b"cookie", f"sessionid={cookie}".encode()))
    return WebsocketCommunicator(application, f"/ws/chat/{chat_id}/", headers=headers)


@contextlib.asynccontextmanager
async def chat_socket(chat_id: int, user):
    """A connected chat websocket, closed (and the loop's model clients with it) at the end."""
    from webapp.chat.clients import close_clients

    socket = await communicator(chat_id, user=user)
    connected, code = await socket.connect()
    assert connected, f"refused with close code {code}"
    try:
        yield socket
    finally:
        await socket.disconnect()
        await close_clients()


async def frames_until(socket: WebsocketCommunicator, kind: str, timeout: float = 10) -> list[dict]:
    """Every frame up to and including the first of type ``kind``."""
    frames = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await socket.receive_json_from(timeout=timeout)
            frames.append(frame)
            if frame["type"] == kind:
                return frames


class KeywordEmbedder:
    """One dimension per keyword: texts sharing keywords are similar, so cosines can be worked out by hand."""

    KEYWORDS = ("apples", "trains", "clocks", "pens")

    def encode(self, texts):
        rows = [[float(word in text.lower()) for word in self.KEYWORDS] + [0.01] for text in texts]
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), len(self.KEYWORDS) + 1)


def keyword_embedder() -> KeywordEmbedder:
    return KeywordEmbedder()


def approved(count: int, annotator, *, method: str = "lema", decision: str = "approve"):
    """``count`` pieces of feedback on wrong answers about apples, reviewed by ``annotator`` (approved by default)."""
    feedback = make_feedback(count, method=method)
    queue = queue_create(name=f"approved {method}", feedback=feedback, annotators=[annotator])
    for review in Review.objects.filter(queue=queue):
        review_submit(review_id=review.pk, user=annotator, version=0, decision=decision)
    return feedback
