"""EndpointConfig: where a model lives, how hard to push it, and what its tokens cost."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

NO_KEY = "EMPTY"  # what OpenAI-compatible servers without auth (vLLM, Errata's own) expect


@dataclass(frozen=True)
class EndpointConfig:
    """One OpenAI-compatible endpoint and model. The API key is named, never held: see ``api_key``."""

    name: str                      # Errata's name for the endpoint (part of the cache key)
    base_url: str                  # e.g. "http://127.0.0.1:8001/v1" or "https://api.openai.com/v1"
    model: str                     # model name sent in requests
    api_key_env: str = ""          # NAME of the environment variable holding the key; "" = no key
    max_concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 5
    price_in_per_1k: float = 0.0   # USD per 1k prompt tokens
    price_out_per_1k: float = 0.0  # USD per 1k completion tokens
    default_params: dict = field(default_factory=dict)  # temperature, top_p, max_tokens, stop, seed...

    def __post_init__(self):
        if self.max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if self.max_retries < 0:
            raise ValueError("max_retries must not be negative")
        if self.timeout_s <= 0:
            raise ValueError("timeout_s must be positive")

    def api_key(self) -> str:
        """The key as the environment holds it right now ("EMPTY" when the endpoint needs none)."""
        if not self.api_key_env:
            return NO_KEY
        return os.environ.get(self.api_key_env, "")

    def missing_key_reason(self) -> str | None:
        """Why no request can be sent, when the named key variable is unset; else None."""
        if self.api_key_env and not os.environ.get(self.api_key_env):
            return f"the environment variable {self.api_key_env} (which should hold the API key) is not set"
        return None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return prompt_tokens / 1000 * self.price_in_per_1k + completion_tokens / 1000 * self.price_out_per_1k
