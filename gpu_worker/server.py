"""Errata's CPU model server: the OpenAI HTTP API (chat, completions, streaming, models) over an ``Engine``.

Like vLLM started with ``--enable-lora`` and ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``, it also takes
``POST /v1/load_lora_adapter`` and ``POST /v1/unload_lora_adapter`` (same bodies, status codes and
plain-text success answers), and like vLLM's ``--api-key`` an optional key guards every ``/v1`` route.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Route

from gpu_worker.engine import (
    AdapterNotFoundError,
    Engine,
    EngineClosedError,
    GenerationParams,
    InvalidRequestError,
    ModelSpec,
    TokenStream,
    UnknownModelError,
    sample_seed,
)
from gpu_worker.openai_schema import (
    BadRequest,
    ChunkMaker,
    Limits,
    chat_response,
    completion_response,
    error_body,
    parse_chat,
    parse_completion,
    parse_load_adapter,
    parse_unload_adapter,
)

log = logging.getLogger(__name__)


def create_app(
    engine: Engine, *, served_name_prefix: str = "", limits: Limits = Limits(), api_key: str | None = None
) -> Starlette:
    """A Starlette app serving ``engine``'s models, named ``served_name_prefix + name`` to clients.

    With ``api_key``, every ``/v1`` route asks for ``Authorization: Bearer <api_key>`` (401 without it).
    """
    api = _Api(engine, served_name_prefix, limits)
    routes = [
        Route("/health", api.health),
        Route("/v1/models", api.list_models),
        Route("/v1/models/{model:path}", api.get_model),
        Route("/v1/chat/completions", api.chat, methods=["POST"]),
        Route("/v1/completions", api.completions, methods=["POST"]),
        Route("/v1/load_lora_adapter", api.load_lora_adapter, methods=["POST"]),
        Route("/v1/unload_lora_adapter", api.unload_lora_adapter, methods=["POST"]),
    ]
    handlers = {
        BadRequest: _bad_request,
        InvalidRequestError: _bad_request,
        UnknownModelError: _unknown_model,
        AdapterNotFoundError: _adapter_not_found,
        EngineClosedError: _unavailable,
        _ClientGone: _client_gone,
        HTTPException: _http_error,
        Exception: _server_error,
    }
    middleware = [Middleware(_RequireKey, key=api_key)] if api_key else []
    app = Starlette(routes=routes, exception_handlers=handlers, middleware=middleware)
    app.state.engine = engine
    return app


def run_server(
    specs: Sequence[ModelSpec],
    *,
    host: str = "127.0.0.1",
    port: int = 8001,
    max_batch_size: int = 8,
    num_threads: int | None = None,
    served_name_prefix: str = "",
    log_level: str = "info",
    api_key: str | None = None,
) -> None:
    """Load ``specs`` and serve them until interrupted (blocking); ``num_threads`` None: ``default_num_threads()``."""
    import uvicorn

    engine = Engine(specs, max_batch_size=max_batch_size, num_threads=num_threads or default_num_threads())
    try:
        app = create_app(engine, served_name_prefix=served_name_prefix, api_key=api_key)
        uvicorn.run(app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=5)
    finally:
        engine.close()


def default_num_threads() -> int:
    """Torch threads for the server: $ERRATA_TORCH_THREADS, else half the cores (1 to 8).

    Half, because the web app and workers share the machine: on 2 cores with the other one busy,
    2 torch threads decoded several times slower than 1 (MACHINE.md measured up to 20x).
    """
    configured = os.environ.get("ERRATA_TORCH_THREADS")
    if configured:
        return max(1, int(configured))
    return max(1, min(8, (os.cpu_count() or 2) // 2))


class _Api:
    """The route handlers, bound to one engine and one name prefix."""

    def __init__(self, engine: Engine, prefix: str, limits: Limits):
        self.engine = engine
        self.prefix = prefix
        self.limits = limits

    def _unprefixed(self, public: str) -> str:
        return public[len(self.prefix) :] if self.prefix and public.startswith(self.prefix) else public

    def _engine_name(self, public: str) -> str:
        name = self._unprefixed(public)
        if name not in self.engine.model_names():
            raise UnknownModelError(f"The model `{public}` does not exist.")
        return name

    def _card(self, name: str) -> dict:
        parent = self.engine.parent(name)
        return {
            "id": self.prefix + name,
            "object": "model",
            "created": 0,
            "owned_by": "errata",
            "root": self.engine.root(name),  # as vLLM: an adapter's folder, so a client can tell what is loaded
            "parent": self.prefix + parent if parent else None,
            "max_model_len": self.engine.context_length(name),
        }

    async def health(self, request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "models": [self.prefix + name for name in self.engine.model_names()]})

    async def list_models(self, request: Request) -> JSONResponse:
        return JSONResponse({"object": "list", "data": [self._card(name) for name in self.engine.model_names()]})

    async def get_model(self, request: Request) -> JSONResponse:
        return JSONResponse(self._card(self._engine_name(request.path_params["model"])))

    async def chat(self, request: Request):
        parsed = parse_chat(await _json(request), self.limits)
        model = self._engine_name(parsed.model)
        prompt = self.engine.chat_prompt(model, parsed.messages, continue_final_message=parsed.continue_final_message)
        if parsed.stream:
            chunks = ChunkMaker(chat=True, model=parsed.model, include_usage=parsed.include_usage)
            return _sse(self._events(chunks, model, [prompt], parsed.params))
        results = await _unless_disconnected(request, self.engine.generate(model, prompt, parsed.params))
        return JSONResponse(chat_response(parsed.model, results))

    async def completions(self, request: Request):
        parsed = parse_completion(await _json(request), self.limits)
        model = self._engine_name(parsed.model)
        if parsed.stream:
            chunks = ChunkMaker(chat=False, model=parsed.model, include_usage=parsed.include_usage)
            return _sse(self._events(chunks, model, parsed.prompts, parsed.params))
        work = _all([self.engine.generate(model, prompt, parsed.params) for prompt in parsed.prompts])
        per_prompt = await _unless_disconnected(request, work)
        return JSONResponse(completion_response(parsed.model, per_prompt))

    async def load_lora_adapter(self, request: Request) -> PlainTextResponse:
        """vLLM's runtime LoRA loading; ``base_model_name`` (Errata's addition) picks the base when several are served."""
        parsed = parse_load_adapter(await _json(request))
        base = self._unprefixed(parsed.base_model_name) if parsed.base_model_name else None
        await self.engine.load_adapter(base, self._unprefixed(parsed.lora_name), parsed.lora_path)
        log.info("loaded LoRA adapter %r from %s", parsed.lora_name, parsed.lora_path)
        return PlainTextResponse(f"Success: LoRA adapter '{parsed.lora_name}' added successfully.")

    async def unload_lora_adapter(self, request: Request) -> PlainTextResponse:
        """vLLM's runtime LoRA unloading; answers once the adapter's requests in flight have finished."""
        name = parse_unload_adapter(await _json(request))
        await self.engine.unload_adapter(self._unprefixed(name))
        log.info("unloaded LoRA adapter %r", name)
        return PlainTextResponse(f"Success: LoRA adapter '{name}' removed successfully.")

    def _events(self, chunks: ChunkMaker, model: str, prompts: list[str], params: GenerationParams) -> AsyncIterator[dict]:
        """Open every stream now, so a bad request fails with a status code before the response starts."""
        streams = []
        try:
            for prompt in prompts:
                for i in range(params.n):
                    seed = sample_seed(params.seed, i) if params.seed is not None else None
                    streams.append(self.engine.stream(model, prompt, replace(params, n=1, seed=seed)))
        except BaseException:
            for stream in streams:
                stream.cancel()
            raise
        return _stream_events(chunks, streams, distinct_prompts=len(prompts))


async def _stream_events(chunks: ChunkMaker, streams: list[TokenStream], *, distinct_prompts: int) -> AsyncIterator[dict]:
    """Chunks for several streams as their tokens arrive; choice ``i`` is stream ``i``."""
    n = len(streams) // distinct_prompts
    try:
        if chunks.chat:
            for i in range(len(streams)):
                yield chunks.choice(i, role=True)
        async for i, delta in _merged(streams):
            if delta is None:
                yield chunks.choice(i, finish_reason=streams[i].finish_reason)
            else:
                yield chunks.choice(i, text=delta)
        if chunks.include_usage:
            prompt_tokens = sum(streams[p * n].prompt_tokens for p in range(distinct_prompts))
            yield chunks.usage(prompt_tokens, sum(s.completion_tokens for s in streams))
    except Exception as error:  # the status line is sent: report the failure inside the stream
        log.exception("stream failed")
        yield error_body(f"generation failed: {error}", kind="server_error")
    finally:
        for stream in streams:
            stream.cancel()


async def _merged(streams: list[TokenStream]) -> AsyncIterator[tuple[int, str | None]]:
    """(stream index, delta) as deltas arrive from any stream; (index, None) when that stream ends."""
    if len(streams) == 1:
        async for delta in streams[0]:
            yield 0, delta
        yield 0, None
        return
    arrivals: asyncio.Queue = asyncio.Queue()

    async def pump(i: int, stream: TokenStream) -> None:
        try:
            async for delta in stream:
                arrivals.put_nowait((i, delta, None))
            arrivals.put_nowait((i, None, None))
        except Exception as error:
            arrivals.put_nowait((i, None, error))

    tasks = [asyncio.create_task(pump(i, stream)) for i, stream in enumerate(streams)]
    try:
        for _ in range(len(streams)):
            while True:
                i, delta, error = await arrivals.get()
                if error is not None:
                    raise error
                yield i, delta
                if delta is None:
                    break
    finally:
        for task in tasks:
            task.cancel()


async def _all(awaitables):
    """Await all; if one fails, cancel the rest (their generation stops) and raise."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()


async def _unless_disconnected(request: Request, work):
    """Await ``work``, cancelling it (and so its generation) if the client hangs up first."""
    work = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        if not work.done():
            work.cancel()
    if work.cancelled():
        raise _ClientGone()
    return work.result()


async def _disconnected(request: Request) -> None:
    """Return when the client hangs up (the body is already read, so only a disconnect can arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


class _ClientGone(Exception):
    """The client left before its answer was ready; nobody reads the response."""


def _sse(events: AsyncIterator[dict]) -> StreamingResponse:
    async def body():
        async for event in events:
            yield f"data: {json.dumps(event)}\n\n"
        yield "data: [DONE]\n\n"

    return StreamingResponse(body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def _json(request: Request):
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BadRequest(f"the request body is not valid JSON: {error}") from None


def _bad_request(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse(error_body(str(error), code="invalid_value", param=getattr(error, "param", None)), status_code=400)


def _unknown_model(request: Request, error: Exception) -> JSONResponse:
    message = error.args[0] if error.args else "model not found"
    return JSONResponse(error_body(message, code="model_not_found", param="model"), status_code=404)


def _adapter_not_found(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse(error_body(str(error), kind="NotFoundError", code="adapter_not_found", param="lora_name"),
                        status_code=404)


def _unavailable(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse(error_body(str(error), kind="server_error", code="unavailable"), status_code=503)


def _client_gone(request: Request, error: Exception) -> JSONResponse:
    return JSONResponse(error_body("the client closed the connection", code="client_closed"), status_code=499)


def _http_error(request: Request, error: HTTPException) -> JSONResponse:
    return JSONResponse(error_body(error.detail, code=str(error.status_code)), status_code=error.status_code)


def _server_error(request: Request, error: Exception) -> JSONResponse:
    log.error("request failed", exc_info=error)
    return JSONResponse(error_body(f"internal error: {type(error).__name__}: {error}", kind="server_error"), status_code=500)


class _RequireKey:
    """ASGI middleware: every ``/v1`` request must carry ``Authorization: Bearer <key>``, as vLLM's ``--api-key``."""

    def __init__(self, app, *, key: str):
        self.app = app
        self.expected = f"Bearer {key}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1") and not self._authorized(scope):
            body = error_body("Unauthorized: send the server's API key as a Bearer token", code="invalid_api_key")
            await JSONResponse(body, status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _authorized(self, scope) -> bool:
        given = dict(scope["headers"]).get(b"authorization", b"")
        return hmac.compare_digest(given, self.expected)
