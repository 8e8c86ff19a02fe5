"""The CPU generation engine: served models, a request queue, and one worker thread that batches decoding.

Callers on any thread (the server's event loop, a Celery task) submit requests; a single worker
thread owns the models and runs continuous batching (``gpu_worker.batching``): requests for the
same model and adapter share each forward pass, new ones join between steps, and every row
keeps its own max_tokens, stop strings, temperature, top_p and seed. Results and streamed text go
back to asyncio callers through ``loop.call_soon_threadsafe``.

LoRA adapters can be loaded and unloaded while serving: the change is queued to the worker, which
makes it between decoding steps (never during a forward pass; see ``gpu_worker.adapter_changes``), and the
caller awaits a future.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import random
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from gpu_worker.adapter_changes import AdapterChange, AdapterScheduler
from gpu_worker.batching import Row
from gpu_worker.errors import AdapterNotFoundError, EngineClosedError, InvalidRequestError, UnknownModelError
from gpu_worker.generation import TextTracker
from gpu_worker.loading import LoadedModel, is_adapter_folder, load_model

MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ModelSpec:
    """What to serve under one name: base weights (HF folder, folder with a .gguf, or a .gguf file) and adapters."""

    name: str
    path: str
    gguf_file: str | None = None
    adapters: dict[str, str] = field(default_factory=dict)  # adapter model name -> peft LoRA folder


@dataclass(frozen=True)
class GenerationParams:
    """Decoding settings of one request; temperature 0 is greedy; sample i draws with ``sample_seed(seed, i)``."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None
    n: int = 1
    ignore_eos: bool = False  # as vLLM's: always generate max_tokens (benchmarks)
    fit_context: bool = False  # lower max_tokens to what the context leaves instead of refusing the request

    def validate(self) -> None:
        if not isinstance(self.n, int) or self.n < 1:
            raise InvalidRequestError("n must be an integer >= 1")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise InvalidRequestError("max_tokens must be an integer >= 1")
        if not 0.0 <= self.temperature <= 2.0:
            raise InvalidRequestError("temperature must be between 0 and 2")
        if not 0.0 < self.top_p <= 1.0:
            raise InvalidRequestError("top_p must be greater than 0 and at most 1")


@dataclass
class Generated:
    """One finished sample."""

    text: str
    finish_reason: str  # "stop" (EOS or a stop string) or "length" (max_tokens or the context ran out)
    prompt_tokens: int
    completion_tokens: int


class _Route(NamedTuple):
    """Where a client-facing model name leads."""

    base: str  # the base model's name
    adapter: str | None  # the adapter's name, None for the bare base model
    root: str  # the weights it comes from: the base's path or the adapter's folder (vLLM's ``root``)


class _Request:
    """One submitted prompt with ``n`` rows; events go to ``deliver`` from the worker thread."""

    def __init__(self, key: tuple, prompt_ids: list[int], params: GenerationParams, streaming: bool, deliver: Callable):
        self.key = key  # (base model name, adapter name or None): rows batch only with the same key
        self.prompt_ids = prompt_ids
        self.params = params
        self.streaming = streaming
        self.cancelled = False
        self._deliver = deliver

    def on_delta(self, row: Row, text: str) -> None:
        self._deliver(("delta", row.index, text))

    def on_finished(self, row: Row) -> None:
        done = Generated(row.tracker.text, row.finish_reason, len(self.prompt_ids), row.completion_tokens)
        self._deliver(("done", row.index, done))

    def on_error(self, error: BaseException) -> None:
        self.cancelled = True
        self._deliver(("error", None, error))


def _to_loop(loop: asyncio.AbstractEventLoop, events: asyncio.Queue) -> Callable:
    def deliver(event) -> None:
        try:
            loop.call_soon_threadsafe(events.put_nowait, event)
        except RuntimeError:  # the caller's loop is gone: nobody is listening
            pass

    return deliver


class TokenStream:
    """Text deltas of one streamed sample; after the last one, ``finish_reason`` and token counts are set.

    ``cancel()`` (or ``aclose()``) stops generation for the row, e.g. when the client disconnects.
    """

    def __init__(self, request: _Request, events: asyncio.Queue):
        self._request = request
        self._events = events
        self.finish_reason: str | None = None
        self.prompt_tokens = len(request.prompt_ids)
        self.completion_tokens = 0

    def __aiter__(self) -> TokenStream:
        return self

    async def __anext__(self) -> str:
        if self.finish_reason is not None:
            raise StopAsyncIteration
        try:
            kind, _, payload = await self._events.get()
        except BaseException:
            self.cancel()
            raise
        if kind == "error":
            raise payload
        if kind == "done":
            self.finish_reason, self.completion_tokens = payload.finish_reason, payload.completion_tokens
            raise StopAsyncIteration
        return payload

    def cancel(self) -> None:
        self._request.cancelled = True

    async def aclose(self) -> None:
        self.cancel()


class Engine:
    """Serves the models of ``specs`` (and their adapters) from one worker thread with continuous batching."""

    def __init__(
        self,
        specs: Sequence[ModelSpec],
        *,
        max_batch_size: int = 8,
        batch_window_ms: float = 10.0,
        num_threads: int | None = None,
        device: str = "cpu",
    ):
        import torch

        self.specs = list(specs)
        # Replaced whole, never changed in place, and only by the worker thread: readers on other
        # threads see the old or the new dict, never one half-way through a change.
        self._routes = _routes(self.specs)
        if num_threads:
            torch.set_num_threads(num_threads)
        self._models: dict[str, LoadedModel] = {spec.name: load_model(spec, device=device) for spec in self.specs}
        self._closed = False
        self._scheduler = AdapterScheduler(
            self._models, max_batch_size=max_batch_size, batch_window_s=batch_window_ms / 1000, num_threads=num_threads
        )

    # ---- what is served

    def model_names(self) -> list[str]:
        """Every name a client may ask for: base models and adapters."""
        return list(self._routes)

    def parent(self, model: str) -> str | None:
        """The base model an adapter name runs on; None for a base model."""
        route = self._route(model)
        return route.base if route.adapter else None

    def root(self, model: str) -> str:
        """Where a name's weights come from: the base model's path, or the adapter's folder."""
        return self._route(model).root

    def context_length(self, model: str) -> int:
        """How many tokens prompt and reply may hold together."""
        return self._models[self._route(model).base].context_length

    def chat_prompt(self, model: str, messages: list[dict], *, continue_final_message: bool = False) -> str:
        """The prompt text for ``messages``: the chat template with the assistant's turn opened (or, with
        ``continue_final_message``, the last assistant message left open to continue)."""
        base = self._route(model).base
        try:
            return self._models[base].chat_prompt(messages, continue_final_message=continue_final_message)
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidRequestError(f"cannot apply the chat template: {error}") from error
        except Exception as error:  # jinja2 errors raised by templates (e.g. "roles must alternate")
            if type(error).__module__.startswith("jinja2"):
                raise InvalidRequestError(f"cannot apply the chat template: {error}") from error
            raise

    def _route(self, model: str) -> _Route:
        try:
            return self._routes[model]
        except KeyError:
            raise UnknownModelError(f"The model `{model}` does not exist.") from None

    # ---- adapters while serving

    async def load_adapter(self, base_model_name: str | None, adapter_name: str, path: str) -> None:
        """Serve the peft LoRA folder ``path`` as ``adapter_name`` on a base model, without a restart.

        ``base_model_name`` None means the only base model served. Requests in flight go on undisturbed;
        once this returns the name is listed and answers. Errors: a name already served or an adapter
        that does not fit the base (InvalidRequestError, 400), no adapter_config.json at ``path``
        (AdapterNotFoundError, 404), an unknown base (UnknownModelError, 404).
        """
        if self._closed:
            raise EngineClosedError("the engine is closed")
        base = self._base_for_adapter(base_model_name)
        if not is_adapter_folder(path):
            raise AdapterNotFoundError(
                f"Loading lora {adapter_name} failed: No adapter found for {path} (no adapter_config.json there)")

        def load() -> bool:
            if adapter_name in self._routes:
                raise InvalidRequestError(f"The lora adapter '{adapter_name}' has already been loaded.")
            try:
                self._models[base].add_adapter(adapter_name, path)
            except Exception as error:
                reason = " ".join(str(error).split())  # peft's messages span lines
                raise InvalidRequestError(f"Loading lora {adapter_name} failed: {reason}") from error
            self._routes = {**self._routes, adapter_name: _Route(base, adapter_name, path)}
            return True

        await self._change_adapters(adapter_name, load)

    async def unload_adapter(self, adapter_name: str) -> None:
        """Stop serving ``adapter_name`` and free its weights.

        New requests for it are refused at once (404); requests already in flight finish on its weights,
        and only then are the weights deleted and this returns, so it may wait for the longest of them.
        An unknown name (or a base model's) is AdapterNotFoundError (404), as in vLLM.
        """
        gone: _Route | None = None

        def unload() -> bool:
            nonlocal gone
            if gone is None:
                route = self._routes.get(adapter_name)
                if route is None or route.adapter is None:
                    raise AdapterNotFoundError(f"The lora adapter '{adapter_name}' cannot be found.")
                gone = route
                self._routes = {name: other for name, other in self._routes.items() if name != adapter_name}
            if self._scheduler.has_rows((gone.base, adapter_name)):
                return False  # asked again after the next decoding step
            self._models[gone.base].remove_adapter(adapter_name)
            return True

        await self._change_adapters(adapter_name, unload)

    def _base_for_adapter(self, base_model_name: str | None) -> str:
        bases = [spec.name for spec in self.specs]
        if base_model_name is None:
            if len(bases) > 1:
                raise InvalidRequestError(
                    f"several base models are served ({', '.join(bases)}): name one in base_model_name")
            return bases[0]
        route = self._route(base_model_name)
        if route.adapter is not None:
            raise InvalidRequestError(f"`{base_model_name}` is a LoRA adapter; name its base model ({route.base})")
        return base_model_name

    async def _change_adapters(self, adapter_name: str, step: Callable[[], bool]) -> None:
        if self._closed:
            raise EngineClosedError("the engine is closed")
        await asyncio.wrap_future(self._scheduler.change(AdapterChange(adapter_name, step)))

    # ---- generation

    async def generate(self, model: str, prompt: str, params: GenerationParams) -> list[Generated]:
        """``params.n`` samples for ``prompt``; cancelling the awaiting task cancels the generation."""
        events: asyncio.Queue = asyncio.Queue()
        request = self._submit(model, prompt, params, streaming=False, deliver=_to_loop(asyncio.get_running_loop(), events))
        results: list[Generated | None] = [None] * params.n
        try:
            for _ in range(params.n):
                kind, index, payload = await events.get()
                if kind == "error":
                    raise payload
                results[index] = payload
        finally:
            request.cancelled = True  # no-op once finished; stops the rows if the caller gave up
        return results

    def stream(self, model: str, prompt: str, params: GenerationParams) -> AsyncIterator[str]:
        """Text deltas of one sample, token by token (call from a running event loop; ``params.n`` must be 1)."""
        if params.n != 1:
            raise InvalidRequestError("stream one sample at a time (n=1); open several streams for more")
        events: asyncio.Queue = asyncio.Queue()
        request = self._submit(model, prompt, params, streaming=True, deliver=_to_loop(asyncio.get_running_loop(), events))
        return TokenStream(request, events)

    def generate_batch_sync(self, model: str, prompts: list[str], params: GenerationParams) -> list[list[Generated]]:
        """``params.n`` samples for each prompt, blocking; every prompt is checked before any work starts."""
        events: queue.Queue = queue.Queue()
        prepared = [
            self._prepare(model, prompt, params, streaming=False, deliver=lambda event, i=i: events.put((i, event)))
            for i, prompt in enumerate(prompts)
        ]
        for _, rows in prepared:
            self._enqueue(rows)
        results = [[None] * params.n for _ in prompts]
        try:
            for _ in range(len(prompts) * params.n):
                i, (kind, index, payload) = events.get()
                if kind == "error":
                    raise payload
                results[i][index] = payload
        finally:
            for request, _ in prepared:
                request.cancelled = True
        return results

    def _submit(self, model: str, prompt: str, params: GenerationParams, **how) -> _Request:
        request, rows = self._prepare(model, prompt, params, **how)
        self._enqueue(rows)
        return request

    def _prepare(self, model, prompt, params, *, streaming: bool, deliver: Callable) -> tuple[_Request, list[Row]]:
        import torch

        if self._closed:
            raise EngineClosedError("the engine is closed")
        base, adapter, _ = self._route(model)
        params.validate()
        loaded = self._models[base]
        ids = loaded.encode(prompt)
        if not ids:
            raise InvalidRequestError("the prompt is empty")
        if params.fit_context and len(ids) < loaded.context_length:
            params = replace(params, max_tokens=min(params.max_tokens, loaded.context_length - len(ids)))
        if len(ids) + params.max_tokens > loaded.context_length:
            raise InvalidRequestError(
                f"This model's maximum context length is {loaded.context_length} tokens; the prompt has "
                f"{len(ids)} tokens and max_tokens asks for {params.max_tokens} more."
            )
        request = _Request((base, adapter), ids, params, streaming, deliver)
        seed = params.seed if params.seed is not None else random.SystemRandom().randrange(MAX_SEED)
        rows = []
        for i in range(params.n):
            generator = None
            if params.temperature > 0:
                generator = torch.Generator(device=loaded.device).manual_seed(sample_seed(seed, i))
            rows.append(Row(request, i, ids, params, generator, TextTracker(loaded.tokenizer, ids, params.stop)))
        return request, rows

    def _enqueue(self, rows: list[Row]) -> None:
        self._scheduler.submit(rows)

    def stats(self) -> dict[str, int]:
        """Counters for tests and monitoring, plus the rows decoding and waiting right now."""
        return self._scheduler.stats()

    def close(self) -> None:
        """Stop the worker; requests still running end with ``EngineClosedError``."""
        self._closed = True
        self._scheduler.close(EngineClosedError("the engine was closed"))

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sample_seed(seed: int, index: int) -> int:
    """The seed of sample ``index`` of a request: ``seed`` itself for the first, unrelated seeds after it.

    Hashing (rather than seed + index) keeps requests with neighbouring seeds from sharing samples.
    """
    if index == 0:
        return seed % MAX_SEED
    digest = hashlib.blake2b(f"{seed}/{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % MAX_SEED


def _routes(specs: Sequence[ModelSpec]) -> dict[str, _Route]:
    """Client-facing model name -> its route; names must be unique."""
    routes: dict[str, _Route] = {}
    for spec in specs:
        named = [(spec.name, _Route(spec.name, None, spec.path))]
        named += [(name, _Route(spec.name, name, path)) for name, path in spec.adapters.items()]
        for name, route in named:
            if name in routes:
                raise ValueError(f"model name {name!r} is served twice")
            routes[name] = route
    return routes
