"""Request bodies out, answers in: the OpenAI wire format for chat and completions, and the cache's copy."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .failures import Failure
from .results import ChatResult

# Set by the client itself; a value for them in params would contradict it.
RESERVED_PARAMS = {"model", "messages", "prompt", "n", "stream", "stream_options"}


def merge_params(defaults: dict, overrides: dict | None) -> dict:
    """The endpoint's defaults overridden by the request's; None means "leave it to the server"."""
    merged = {**defaults, **(overrides or {})}
    return {name: value for name, value in merged.items() if value is not None and name not in RESERVED_PARAMS}


def request_body(model: str, kind: str, prompt: object, params: dict, n: int, filled: int = 0) -> dict:
    """The JSON body for ``n`` more samples; ``filled`` samples came already (a server that ignores
    ``n`` is asked again, with the seed moved on so the extra samples are not copies)."""
    body = {"model": model, ("messages" if kind == "chat" else "prompt"): prompt, **params}
    if n > 1:
        body["n"] = n
    if filled and isinstance(params.get("seed"), int):
        body["seed"] = params["seed"] + filled
    return body


@dataclass
class Answer:
    """What one HTTP answer (or several, when filling up to n) brought back."""

    texts: list[str] = field(default_factory=list)
    finish_reasons: list[str] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def extend(self, other: "Answer", limit: int) -> None:
        room = max(0, limit - len(self.texts))
        self.texts += other.texts[:room]
        self.finish_reasons += other.finish_reasons[:room]
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens


def parse_answer(content: bytes, kind: str) -> Answer:
    """Texts, finish reasons and token counts of a 200 answer; a Failure (retried) when it has none."""
    try:
        data = json.loads(content)
    except ValueError:
        raise Failure("response was not valid JSON", retryable=True) from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not choices or not isinstance(choices, list):
        raise Failure("response had no choices", retryable=True)
    answer = Answer()
    for choice in sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0):
        text = choice_text(choice, kind)
        if text is None:
            raise Failure("response choice had no content", retryable=True)
        answer.texts.append(text)
        answer.finish_reasons.append(str(choice.get("finish_reason") or ""))
    usage = data.get("usage") or {}
    answer.prompt_tokens = int(usage.get("prompt_tokens") or 0)
    answer.completion_tokens = int(usage.get("completion_tokens") or 0)
    return answer


def choice_text(choice: object, kind: str) -> str | None:
    if not isinstance(choice, dict):
        return None
    if kind == "completion":
        text = choice.get("text")
    else:
        text = (choice.get("message") or {}).get("content")
    return text if isinstance(text, str) else None


def cache_value(result: ChatResult) -> dict:
    return {
        "texts": result.texts,
        "finish_reasons": result.finish_reasons,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "cost": result.cost,
    }


def result_from_cache(key: str, value: dict, latency_s: float) -> ChatResult:
    """A cached answer: its original token counts, but nothing paid this time."""
    return ChatResult(
        key=key, texts=list(value["texts"]), finish_reasons=list(value["finish_reasons"]),
        prompt_tokens=value["prompt_tokens"], completion_tokens=value["completion_tokens"], cost=0.0,
        latency_s=latency_s, cached=True, attempts=0, error=None,
    )
