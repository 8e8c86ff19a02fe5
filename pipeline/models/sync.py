"""chat_once: one chat request from code that is not async (the "test connection" button)."""

from __future__ import annotations

import asyncio
import concurrent.futures

from .client import ModelClient
from .endpoint import EndpointConfig
from .results import ChatRequest, ChatResult


def chat_once(endpoint: EndpointConfig, messages: list[dict], **params) -> ChatResult:
    """Send one chat request in a fresh event loop, without the cache; the result says what happened.

    From inside a running loop (an async view) the fresh loop runs in a short-lived thread.
    """

    async def ask() -> ChatResult:
        async with ModelClient(endpoint, use_cache=False) as client:
            return await client.chat(ChatRequest(messages=list(messages), params=params, key="chat_once"))

    if not _loop_running():
        return asyncio.run(ask())
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, ask()).result()


def _loop_running() -> bool:
    # Answered outside the ``except``: an exception raised later must not carry this RuntimeError
    # as its context (it would hide the real cause of a failed request).
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
