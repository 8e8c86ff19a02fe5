"""The OpenAI API's shapes: request bodies checked into plain values, and responses, chunks and errors built."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from gpu_worker.engine import GenerationParams, Generated

DEFAULT_TEMPERATURE = 1.0  # OpenAI's default when a request names none
MAX_STOP_STRINGS = 16


class BadRequest(ValueError):
    """A request body the API cannot accept; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None):
        super().__init__(message)
        self.param = param


@dataclass
class ChatRequest:
    model: str
    messages: list[dict[str, str]]
    params: GenerationParams
    stream: bool
    include_usage: bool
    continue_final_message: bool = False  # vLLM's option: go on writing the last (assistant) message


@dataclass
class CompletionRequest:
    model: str
    prompts: list[str]
    params: GenerationParams
    stream: bool
    include_usage: bool


@dataclass(frozen=True)
class Limits:
    max_tokens: int = 4096
    max_n: int = 16


def parse_chat(body: Any, limits: Limits = Limits()) -> ChatRequest:
    body = _object(body)
    _refuse_unsupported(body, ("tools", "functions"), "tool calls")
    if body.get("logprobs") or body.get("top_logprobs"):
        raise BadRequest("logprobs are not supported by this server", "logprobs")
    response_format = body.get("response_format")
    if response_format is not None and (not isinstance(response_format, dict) or response_format.get("type") != "text"):
        raise BadRequest("only response_format {\"type\": \"text\"} is supported", "response_format")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list of {role, content} objects", "messages")
    stream, include_usage = _stream_options(body)
    messages = [_message(message, i) for i, message in enumerate(messages)]
    return ChatRequest(_model(body), messages, _params(body, limits), stream, include_usage,
                       _continue_final_message(body, messages))


def _continue_final_message(body: dict, messages: list[dict]) -> bool:
    """vLLM's ``continue_final_message`` (with ``add_generation_prompt`` false): the reply continues the
    last message, which must be the assistant's; GSI's state reset starts the student from a prefix this way."""
    flag = body.get("continue_final_message", False)
    if not isinstance(flag, bool):
        raise BadRequest("continue_final_message must be true or false", "continue_final_message")
    opens_turn = body.get("add_generation_prompt", True)  # as in vLLM: both must be said
    if not isinstance(opens_turn, bool):
        raise BadRequest("add_generation_prompt must be true or false", "add_generation_prompt")
    if flag and opens_turn:
        raise BadRequest("continue_final_message needs add_generation_prompt false", "add_generation_prompt")
    if flag and messages[-1]["role"] != "assistant":
        raise BadRequest("continue_final_message needs the last message to be the assistant's", "messages")
    return flag


def parse_completion(body: Any, limits: Limits = Limits()) -> CompletionRequest:
    body = _object(body)
    if body.get("logprobs") is not None:
        raise BadRequest("logprobs are not supported by this server", "logprobs")
    if body.get("echo"):
        raise BadRequest("echo is not supported by this server", "echo")
    if body.get("suffix"):
        raise BadRequest("suffix is not supported by this server", "suffix")
    best_of = body.get("best_of")
    if best_of is not None and best_of != body.get("n", 1):
        raise BadRequest("best_of is not supported by this server (leave it out or equal to n)", "best_of")
    prompt = body.get("prompt")
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise BadRequest("prompt must be a string or a non-empty list of strings (token ids are not supported)", "prompt")
    stream, include_usage = _stream_options(body)
    return CompletionRequest(_model(body), prompts, _params(body, limits), stream, include_usage)


@dataclass
class LoadAdapterRequest:
    """vLLM's LoadLoRAAdapterRequest (lora_name, lora_path), plus the base to load onto when several are served."""

    lora_name: str
    lora_path: str
    base_model_name: str | None = None  # Errata's field; vLLM (one base per process) ignores unknown fields


def parse_load_adapter(body: Any) -> LoadAdapterRequest:
    """Checked as vLLM checks it (vllm/entrypoints/openai/serving_models.py), with its messages."""
    body = _object(body)
    name, path = body.get("lora_name"), body.get("lora_path")
    if not (isinstance(name, str) and name and isinstance(path, str) and path):
        raise BadRequest("Both 'lora_name' and 'lora_path' must be provided.", "lora_name" if not name else "lora_path")
    if body.get("load_inplace"):
        raise BadRequest("load_inplace is not supported by this server: unload the adapter, then load it", "load_inplace")
    base = body.get("base_model_name")
    if base is not None and not (isinstance(base, str) and base):
        raise BadRequest("base_model_name must be a non-empty string naming a served base model", "base_model_name")
    return LoadAdapterRequest(name, path, base)


def parse_unload_adapter(body: Any) -> str:
    """The adapter name of vLLM's UnloadLoRAAdapterRequest (its ``lora_int_id`` is not needed here)."""
    name = _object(body).get("lora_name")
    if not isinstance(name, str) or not name:
        raise BadRequest("'lora_name' needs to be provided to unload a LoRA adapter.", "lora_name")
    return name


def _object(body: Any) -> dict:
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _refuse_unsupported(body: dict, fields: tuple[str, ...], what: str) -> None:
    for name in fields:
        if body.get(name):
            raise BadRequest(f"{what} are not supported by this server", name)


def _model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model must be a non-empty string naming a served model", "model")
    return model


def _message(message: Any, index: int) -> dict[str, str]:
    param = f"messages[{index}]"
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise BadRequest(f"{param} must be an object with a string role", param)
    content = message.get("content")
    if content is None:
        content = ""
    elif isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise BadRequest(f"{param}.content: only text parts are supported", f"{param}.content")
            parts.append(part["text"])
        content = "".join(parts)
    elif not isinstance(content, str):
        raise BadRequest(f"{param}.content must be a string or a list of text parts", f"{param}.content")
    return {"role": message["role"], "content": content}


def _stream_options(body: dict) -> tuple[bool, bool]:
    stream = _typed(body, "stream", bool, False)
    options = body.get("stream_options")
    if options is None:
        return stream, False
    if not isinstance(options, dict):
        raise BadRequest("stream_options must be an object", "stream_options")
    if not stream:
        raise BadRequest("stream_options is only allowed when stream is true", "stream_options")
    return stream, _typed(options, "include_usage", bool, False)


def _params(body: dict, limits: Limits) -> GenerationParams:
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name):
            raise BadRequest(f"{name} is not supported by this server (leave it out or 0)", name)
    if body.get("logit_bias"):
        raise BadRequest("logit_bias is not supported by this server", "logit_bias")
    name = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = _typed(body, name, int, None)
    if max_tokens is not None and not 1 <= max_tokens <= limits.max_tokens:
        raise BadRequest(f"{name} must be between 1 and {limits.max_tokens}", name)
    n = _typed(body, "n", int, 1)
    if not 1 <= n <= limits.max_n:
        raise BadRequest(f"n must be between 1 and {limits.max_n}", "n")
    temperature = _number(body, "temperature", DEFAULT_TEMPERATURE)
    if not 0 <= temperature <= 2:
        raise BadRequest("temperature must be between 0 and 2", "temperature")
    top_p = _number(body, "top_p", 1.0)
    if not 0 < top_p <= 1:
        raise BadRequest("top_p must be greater than 0 and at most 1", "top_p")
    return GenerationParams(
        max_tokens=max_tokens if max_tokens is not None else limits.max_tokens,
        fit_context=max_tokens is None,
        temperature=temperature,
        top_p=top_p,
        stop=_stop(body.get("stop")),
        seed=_typed(body, "seed", int, None),
        n=n,
        ignore_eos=_typed(body, "ignore_eos", bool, False),
    )


def _typed(body: dict, name: str, kind: type, default):
    value = body.get(name)
    if value is None:
        return default
    if type(value) is not kind:  # not isinstance: True is an int to Python, not to the API
        raise BadRequest(f"{name} must be {'an integer' if kind is int else 'a ' + kind.__name__}", name)
    return value


def _number(body: dict, name: str, default: float) -> float:
    value = body.get(name)
    if value is None:
        return default
    if type(value) not in (int, float):
        raise BadRequest(f"{name} must be a number", name)
    return float(value)


def _stop(stop: Any) -> tuple[str, ...]:
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > MAX_STOP_STRINGS:
        raise BadRequest(f"stop must be a string or a list of at most {MAX_STOP_STRINGS} strings", "stop")
    return tuple(s for s in stops if s)


# ---- responses


def error_body(
    message: str, *, kind: str = "invalid_request_error", code: str | None = None, param: str | None = None
) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    total = prompt_tokens + completion_tokens
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}


def chat_response(model: str, results: list[Generated]) -> dict:
    choices = [
        {"index": i, "message": {"role": "assistant", "content": r.text}, "logprobs": None, "finish_reason": r.finish_reason}
        for i, r in enumerate(results)
    ]
    completion = sum(r.completion_tokens for r in results)
    envelope = _envelope("chatcmpl", "chat.completion", model)
    return envelope | {"choices": choices, "usage": usage(results[0].prompt_tokens, completion)}


def completion_response(model: str, per_prompt: list[list[Generated]]) -> dict:
    flat = [r for results in per_prompt for r in results]
    choices = [{"index": i, "text": r.text, "logprobs": None, "finish_reason": r.finish_reason} for i, r in enumerate(flat)]
    prompt_tokens = sum(results[0].prompt_tokens for results in per_prompt)
    completion = sum(r.completion_tokens for r in flat)
    return _envelope("cmpl", "text_completion", model) | {"choices": choices, "usage": usage(prompt_tokens, completion)}


def _envelope(prefix: str, kind: str, model: str) -> dict:
    return {"id": new_id(prefix), "object": kind, "created": int(time.time()), "model": model}


class ChunkMaker:
    """Stream chunks of one response: all share an id, a creation time and the model name."""

    def __init__(self, *, chat: bool, model: str, include_usage: bool):
        self.chat = chat
        self.include_usage = include_usage
        self.base = _envelope("chatcmpl" if chat else "cmpl", "chat.completion.chunk" if chat else "text_completion", model)

    def choice(self, index: int, *, text: str = "", role: bool = False, finish_reason: str | None = None) -> dict:
        if self.chat:
            delta = {"role": "assistant", "content": ""} if role else ({"content": text} if text else {})
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        else:
            choice = {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}
        return self._chunk([choice])

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict:
        return self.base | {"choices": [], "usage": usage(prompt_tokens, completion_tokens)}

    def _chunk(self, choices: list[dict]) -> dict:
        chunk = self.base | {"choices": choices}
        if self.include_usage:
            chunk["usage"] = None
        return chunk
