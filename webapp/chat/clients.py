"""One ModelClient per endpoint per event loop, shared by every chat in the process.

Sharing keeps one HTTP connection pool per endpoint and makes the endpoint's ``max_concurrency`` a bound for
the whole web process rather than for each websocket. A client belongs to the event loop it was made in
(aiohttp's sessions do), so the registry is kept per loop; a changed endpoint gets a fresh client.
"""

from __future__ import annotations

import asyncio
import json
import weakref
from dataclasses import asdict

from pipeline.models import EndpointConfig, ModelClient

_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, ModelClient]]" = weakref.WeakKeyDictionary()


def model_client(config: EndpointConfig) -> ModelClient:
    """The running loop's client for ``config`` (made on first use; never cached: chats are not replayed)."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    key = json.dumps(asdict(config), sort_keys=True, default=str)
    client = per_loop.get(key)
    if client is None:
        client = per_loop[key] = ModelClient(config, use_cache=False)
    return client


async def close_clients() -> None:
    """Close the running loop's clients (tests, before their loop ends)."""
    for client in _clients.pop(asyncio.get_running_loop(), {}).values():
        await client.aclose()
