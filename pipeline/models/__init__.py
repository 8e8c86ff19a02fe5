"""The one way Errata reaches a model: an OpenAI-compatible client with retries, a cache and accounting."""

from .cache import ResponseCache, cache_key
from .endpoint import EndpointConfig
from .results import ChatRequest, ChatResult, ModelError, RunUsage

__all__ = [
    "ChatRequest",
    "ChatResult",
    "EndpointConfig",
    "ModelClient",
    "ModelError",
    "ResponseCache",
    "RunUsage",
    "cache_key",
    "chat_once",
]


def __getattr__(name: str):
    """ModelClient and chat_once load the openai library (~0.4 s): only when first used, so that
    Django, which imports EndpointConfig, starts without it."""
    if name == "ModelClient":
        from .client import ModelClient

        return ModelClient
    if name == "chat_once":
        from .sync import chat_once

        return chat_once
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
