"""Celery tasks on the `gpu` queue: JSON specs in, JSON results out (and back to the web side by task name)."""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gpu_worker.celery_app import app
from gpu_worker.smollm2 import SmolLM2Missing, resolve_weights
from gpu_worker.vllm import vllm_available

if TYPE_CHECKING:
    from gpu_worker.engine import Engine, Generated

logger = logging.getLogger(__name__)

ROLES = {"system", "user", "assistant"}
PARAM_TYPES = {
    "max_tokens": int, "temperature": float, "top_p": float, "stop": list, "seed": int, "n": int, "ignore_eos": bool,
}
ENGINE_CACHE_SIZE = 2  # loaded CPU engines kept per worker process, least recently used dropped first


class BatchSpecError(ValueError):
    """A generate_batch spec that cannot run; the message starts with the field at fault."""


@dataclass(frozen=True)
class ReplyTo:
    """Where the result goes: a task on the web side's queue, called as ``task(result, context)``."""

    task: str
    queue: str = "default"
    context: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BatchSpec:
    """A checked generate_batch spec."""

    model: dict  # name, path, gguf_file, adapters: the keyword arguments of engine.ModelSpec
    adapter: str | None  # generate through this adapter of the model, else through the base
    prompts: tuple[str, ...] | None
    conversations: tuple[tuple[dict, ...], ...] | None
    params: dict
    reply_to: ReplyTo | None

    @property
    def served_name(self) -> str:
        return self.adapter or self.model["name"]


# --- Spec checking (pure) -------------------------------------------------------------------


def parse_batch_spec(spec: Any) -> BatchSpec:
    """Check a generate_batch spec and return it typed; BatchSpecError names the field at fault."""
    if not isinstance(spec, Mapping):
        raise BatchSpecError(f"spec: expected a JSON object, got {type(spec).__name__}")
    _reject_unknown(spec, {"model", "adapter", "prompts", "messages", "params", "reply_to"}, "spec")
    model = parse_model(spec.get("model"))
    adapter = spec.get("adapter")
    if adapter is not None and adapter not in model["adapters"]:
        raise BatchSpecError(f"spec.adapter: {adapter!r} is not one of spec.model.adapters {sorted(model['adapters'])}")
    prompts, conversations = parse_inputs(spec)
    return BatchSpec(
        model=model,
        adapter=adapter,
        prompts=prompts,
        conversations=conversations,
        params=parse_params(spec.get("params")),
        reply_to=parse_reply_to(spec.get("reply_to")),
    )


def parse_model(model: Any) -> dict:
    if not isinstance(model, Mapping):
        raise BatchSpecError("spec.model: expected an object with name and path")
    _reject_unknown(model, {"name", "path", "gguf_file", "adapters"}, "spec.model")
    name, path = _text(model.get("name"), "spec.model.name"), _weights(_text(model.get("path"), "spec.model.path"))
    gguf_file = model.get("gguf_file")
    if gguf_file is not None:
        if not (path / _text(gguf_file, "spec.model.gguf_file")).is_file():
            raise BatchSpecError(f"spec.model.gguf_file: {path / gguf_file} does not exist")
    elif path.suffix == ".gguf":
        if not path.is_file():
            raise BatchSpecError(f"spec.model.path: GGUF file {path} does not exist")
    elif not (path / "config.json").is_file():
        raise BatchSpecError(f"spec.model.path: {path} is neither a Hugging Face model folder (no config.json) nor a .gguf file")
    adapters = model.get("adapters") or {}
    if not isinstance(adapters, Mapping):
        raise BatchSpecError("spec.model.adapters: expected an object {adapter name: folder}")
    for adapter_name, adapter_path in adapters.items():
        where = f"spec.model.adapters.{adapter_name}"
        if not (Path(_text(adapter_path, where)) / "adapter_config.json").is_file():
            raise BatchSpecError(f"{where}: {adapter_path} is not a LoRA adapter folder (no adapter_config.json)")
    return {"name": name, "path": str(path), "gguf_file": gguf_file, "adapters": dict(adapters)}


def _weights(path: str) -> Path:
    """The folder or .gguf file to load; ``packaged:smollm2`` is the demo model, converted on first use."""
    try:
        return Path(resolve_weights(path))
    except SmolLM2Missing as error:
        raise BatchSpecError(f"spec.model.path: {error}") from None


def parse_inputs(spec: Mapping) -> tuple[tuple[str, ...] | None, tuple[tuple[dict, ...], ...] | None]:
    """Exactly one of ``prompts`` (raw text) or ``messages`` (one conversation per output row)."""
    prompts, messages = spec.get("prompts"), spec.get("messages")
    if (prompts is None) == (messages is None):
        raise BatchSpecError("spec.prompts / spec.messages: give exactly one of them")
    if prompts is not None:
        if not isinstance(prompts, list) or not prompts:
            raise BatchSpecError("spec.prompts: expected a non-empty list of strings")
        return tuple(_text(prompt, f"spec.prompts[{i}]", empty_ok=True) for i, prompt in enumerate(prompts)), None
    if not isinstance(messages, list) or not messages:
        raise BatchSpecError("spec.messages: expected a non-empty list of conversations")
    return None, tuple(parse_conversation(conversation, f"spec.messages[{i}]") for i, conversation in enumerate(messages))


def parse_conversation(conversation: Any, where: str) -> tuple[dict, ...]:
    if not isinstance(conversation, list) or not conversation:
        raise BatchSpecError(f"{where}: expected a non-empty list of {{role, content}} messages")
    checked = []
    for j, message in enumerate(conversation):
        if not isinstance(message, Mapping) or message.get("role") not in ROLES:
            raise BatchSpecError(f"{where}[{j}].role: expected one of {sorted(ROLES)}")
        content = _text(message.get("content"), f"{where}[{j}].content", empty_ok=True)
        checked.append({"role": message["role"], "content": content})
    return tuple(checked)


def parse_params(params: Any) -> dict:
    """Decoding settings, as keyword arguments for engine.GenerationParams."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise BatchSpecError("spec.params: expected an object")
    _reject_unknown(params, set(PARAM_TYPES), "spec.params")
    checked: dict[str, Any] = {}
    for key, value in params.items():
        where = f"spec.params.{key}"
        if key == "stop":
            checked[key] = _stop_strings(value, where)
        elif key == "seed":
            checked[key] = None if value is None else _number(value, where, int)
        elif key == "ignore_eos":
            if not isinstance(value, bool):
                raise BatchSpecError(f"{where}: expected true or false, got {value!r}")
            checked[key] = value
        else:
            checked[key] = _number(value, where, PARAM_TYPES[key])
    for key in ("max_tokens", "n"):
        if key in checked and checked[key] < 1:
            raise BatchSpecError(f"spec.params.{key}: must be at least 1, not {checked[key]}")
    if not 0 <= checked.get("temperature", 0.0) <= 2:
        raise BatchSpecError(f"spec.params.temperature: must be between 0 and 2, not {checked['temperature']}")
    if not 0 < checked.get("top_p", 1.0) <= 1:
        raise BatchSpecError(f"spec.params.top_p: must be in (0, 1], not {checked['top_p']}")
    return checked


def parse_reply_to(reply_to: Any) -> ReplyTo | None:
    if reply_to is None:
        return None
    if not isinstance(reply_to, Mapping):
        raise BatchSpecError("spec.reply_to: expected an object with task, queue and context")
    _reject_unknown(reply_to, {"task", "queue", "context"}, "spec.reply_to")
    context = reply_to.get("context") or {}
    if not isinstance(context, Mapping):
        raise BatchSpecError("spec.reply_to.context: expected an object")
    return ReplyTo(
        task=_text(reply_to.get("task"), "spec.reply_to.task"),
        queue=_text(reply_to.get("queue", "default"), "spec.reply_to.queue"),
        context=dict(context),
    )


def _reject_unknown(value: Mapping, allowed: set[str], where: str) -> None:
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise BatchSpecError(f"{where}.{unknown[0]}: unknown field (allowed: {', '.join(sorted(allowed))})")


def _text(value: Any, where: str, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise BatchSpecError(f"{where}: expected a {'' if empty_ok else 'non-empty '}string")
    return value


def _number(value: Any, where: str, kind: type) -> int | float:
    # bool is an int in Python, but `"n": true` is a mistake in a JSON spec.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise BatchSpecError(f"{where}: expected {'a whole number' if kind is int else 'a number'}, got {value!r}")
    return kind(value)


def _stop_strings(value: Any, where: str) -> tuple[str, ...]:
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(item, str) and item for item in values):
        raise BatchSpecError(f"{where}: expected a string or a list of non-empty strings")
    return tuple(values)


# --- Running a batch ------------------------------------------------------------------------

_engines: OrderedDict[str, Engine] = OrderedDict()


def cpu_engine(model: dict) -> Engine:
    """A loaded transformers Engine for this model spec, kept for the next batch on the same model."""
    from gpu_worker.engine import Engine, ModelSpec

    key = json.dumps(model, sort_keys=True)
    if key in _engines:
        _engines.move_to_end(key)
        return _engines[key]
    while len(_engines) >= ENGINE_CACHE_SIZE:
        _, old = _engines.popitem(last=False)
        old.close()
    batch_size = int(os.environ.get("ERRATA_BATCH_SIZE") or 8)
    engine = Engine([ModelSpec(**model)], max_batch_size=batch_size)
    _engines[key] = engine
    return engine


def run_batch(batch: BatchSpec) -> list[list[Generated]]:
    """``params.n`` outputs per prompt or conversation: vLLM's offline engine on a GPU, transformers on CPU."""
    from gpu_worker.engine import GenerationParams

    params = GenerationParams(**batch.params)
    if vllm_available():
        return _run_on_vllm(batch, params)
    engine = cpu_engine(batch.model)
    prompts = batch.prompts
    if prompts is None:
        prompts = tuple(engine.chat_prompt(batch.model["name"], list(messages)) for messages in batch.conversations)
    return engine.generate_batch_sync(batch.served_name, list(prompts), params)


def _run_on_vllm(batch: BatchSpec, params) -> list[list[Generated]]:
    from gpu_worker.vllm import vllm_offline_chat, vllm_offline_generate

    model = batch.model
    model_path = Path(model["path"]) / model["gguf_file"] if model["gguf_file"] else Path(model["path"])
    lora = (batch.adapter, model["adapters"][batch.adapter]) if batch.adapter else None
    options = {
        "tensor_parallel_size": int(os.environ.get("ERRATA_VLLM_TENSOR_PARALLEL_SIZE") or 1),
        "gpu_memory_utilization": float(os.environ.get("ERRATA_VLLM_GPU_MEMORY_UTILIZATION") or 0.9),
        "adapter_folders": list(model["adapters"].values()),
    }
    if batch.conversations is not None:
        return vllm_offline_chat(model_path, batch.conversations, params, lora, **options)
    return vllm_offline_generate(model_path, batch.prompts, params, lora, **options)


def describe_outputs(outputs: list[list[Generated]]) -> list[list[dict]]:
    return [
        [
            {"text": out.text, "finish_reason": out.finish_reason,
             "prompt_tokens": out.prompt_tokens, "completion_tokens": out.completion_tokens}
            for out in row
        ]
        for row in outputs
    ]


def send_reply(reply_to: ReplyTo, result: dict) -> None:
    """Hand the result to the web side: its task ``reply_to.task(result, context)`` on its own queue."""
    app.send_task(reply_to.task, args=[result, reply_to.context], queue=reply_to.queue)


def _reply_to_of(spec: Any) -> ReplyTo | None:
    """The reply address of a spec that may be broken elsewhere, so its sender still hears of the failure."""
    try:
        return parse_reply_to(spec.get("reply_to")) if isinstance(spec, Mapping) else None
    except BatchSpecError:
        return None


def _model_name_of(spec: Any) -> str | None:
    model = spec.get("model") if isinstance(spec, Mapping) else None
    name = model.get("name") if isinstance(model, Mapping) else None
    return (spec.get("adapter") or name) if isinstance(name, str) else None


# --- Tasks ----------------------------------------------------------------------------------


@app.task(name="gpu_worker.generate_batch", acks_late=True, reject_on_worker_lost=True)
def generate_batch(spec: dict) -> dict:
    """Generate for every prompt of the spec; the result (or the failure) also goes to ``spec.reply_to``.

    Result: ``{"outputs": [[{text, finish_reason, prompt_tokens, completion_tokens}]], "model", "seconds"}``;
    a failure sends ``{"outputs": None, "model", "seconds", "error"}`` to reply_to and raises.
    """
    started = time.monotonic()
    try:
        batch = parse_batch_spec(spec)
        outputs = describe_outputs(run_batch(batch))
    except Exception as error:
        reply_to = _reply_to_of(spec)
        if reply_to is not None:
            failure = {"outputs": None, "model": _model_name_of(spec), "seconds": _since(started),
                       "error": f"{type(error).__name__}: {error}"}
            send_reply(reply_to, failure)
        raise
    result = {"outputs": outputs, "model": batch.served_name, "seconds": _since(started)}
    if batch.reply_to is not None:
        send_reply(batch.reply_to, result)
    logger.info("generate_batch: %d prompts on %s in %.1fs", len(outputs), result["model"], result["seconds"])
    return result


@app.task(name="gpu_worker.ping", acks_late=True, reject_on_worker_lost=True)
def ping(spec: dict | None = None) -> dict:
    """Who is listening on the gpu queue; with ``{"reply_to": ...}`` the answer also goes there."""
    result = {"pong": True, "host": socket.gethostname(), "pid": os.getpid(),
              "backend": "vllm" if vllm_available() else "cpu"}
    reply_to = parse_reply_to(spec.get("reply_to")) if isinstance(spec, Mapping) else None
    if reply_to is not None:
        send_reply(reply_to, result)
    return result


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
