"""Serving a LoRA adapter from a running model server (vLLM or Errata's CPU server), without a restart.

Both servers take ``POST {base_url}/load_lora_adapter {"lora_name", "lora_path"}`` and
``POST {base_url}/unload_lora_adapter {"lora_name"}``, answer 200 with a plain-text line, and list
each loaded adapter in ``/models`` with ``root`` = its folder. vLLM needs ``--enable-lora`` and
``VLLM_ALLOW_RUNTIME_LORA_UPDATING=True`` for these routes (``gpu_worker.vllm.vllm_serve_command``).
"""

from __future__ import annotations

import os

import httpx2
import openai

from .endpoint import NO_KEY, EndpointConfig
from .failures import classify, error_message, redact, short


class AdapterLoadError(RuntimeError):
    """The model server did not load (or unload) the adapter; the message carries the server's words."""


def load_lora_adapter(config: EndpointConfig, *, name: str, path: str, base_model: str | None = None) -> None:
    """Serve the adapter folder ``path`` (as the server's machine sees it) under the model name ``name``.

    ``base_model`` picks the base on a server with several (Errata's CPU server; vLLM serves one and
    ignores it). Loading a name that is already served from the same folder succeeds (registering twice
    is harmless); from another folder it is an AdapterLoadError: unload it first.
    """
    body = {"lora_name": name, "lora_path": path} | ({"base_model_name": base_model} if base_model else {})
    with _client(config) as client:
        try:
            _post(client, config, "/load_lora_adapter", body)
        except _Refused as refused:
            if refused.status == 400 and "already been loaded" in refused.message:
                served_from = _root(client, config, name)
                if served_from is not None and _same_folder(served_from, path):
                    return
                where = f" from {served_from}" if served_from else ""
                raise AdapterLoadError(f"the adapter name {name!r} is already served{where}, not from {path}; "
                                       "unload it first") from None
            raise AdapterLoadError(f"loading adapter {name!r} failed: {refused}") from None


def unload_lora_adapter(config: EndpointConfig, *, name: str) -> None:
    """Stop serving adapter ``name`` (Errata's CPU server answers once its requests in flight are done)."""
    with _client(config) as client:
        try:
            _post(client, config, "/unload_lora_adapter", {"lora_name": name})
        except _Refused as refused:
            raise AdapterLoadError(f"unloading adapter {name!r} failed: {refused}") from None


class _Refused(Exception):
    """The server answered with an error status."""

    def __init__(self, status: int, message: str):
        super().__init__(f"HTTP {status}: {message}")
        self.status, self.message = status, message


def _client(config: EndpointConfig) -> openai.OpenAI:
    reason = config.missing_key_reason()
    if reason:
        raise AdapterLoadError(reason)
    return openai.OpenAI(base_url=config.base_url, api_key=config.api_key() or NO_KEY, max_retries=0,
                         timeout=config.timeout_s)


def _post(client: openai.OpenAI, config: EndpointConfig, path: str, body: dict) -> None:
    try:
        client.post(path, body=body, cast_to=httpx2.Response)
    except openai.APIStatusError as error:
        raise _Refused(error.status_code, short(redact(error_message(error), config.api_key()))) from None
    except Exception as error:  # unreachable, timed out, reset
        failure = classify(error, timeout_s=config.timeout_s, secret=config.api_key())
        raise AdapterLoadError(f"the model server at {config.base_url} did not answer: {failure.reason}") from None


def _root(client: openai.OpenAI, config: EndpointConfig, name: str) -> str | None:
    """The folder the server says ``name`` is served from (``root`` in /models), if it says."""
    try:
        models = client.get("/models", cast_to=httpx2.Response).json().get("data", [])
    except Exception:  # the load's own error message is the one worth showing
        return None
    return next((model.get("root") for model in models if model.get("id") == name), None)


def _same_folder(a: str, b: str) -> bool:
    return os.path.normpath(a) == os.path.normpath(b)
