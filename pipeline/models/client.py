"""ModelClient: the one way Errata reaches a model — bounded, retried, cached and counted."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import aclosing

import httpx2
import openai

from .answers import Answer, cache_value, merge_params, parse_answer, request_body, result_from_cache
from .cache import ResponseCache, cache_key
from .endpoint import NO_KEY, EndpointConfig
from .failures import Failure, backoff_delay, classify
from .results import ChatRequest, ChatResult, ModelError, RunUsage

log = logging.getLogger(__name__)
PATHS = {"chat": "/chat/completions", "completion": "/completions"}


class GaveUp(Exception):
    """The last attempt failed and no other will be made."""

    def __init__(self, failure: Failure, attempts: int):
        super().__init__(failure.final_reason(attempts))
        self.failure, self.attempts = failure, attempts


class ModelClient:
    """Talks to one endpoint through the official openai client (its retries off: retries are ours).

    ``chat`` and ``complete`` never raise for model or network failures: the result says why.
    Use it as ``async with ModelClient(...) as client`` or call ``aclose``; one event loop only.
    """

    def __init__(self, endpoint: EndpointConfig, *, cache: ResponseCache | None = None, use_cache: bool = True,
                 usage: RunUsage | None = None, retry_base_s: float = 0.5, retry_max_s: float = 30.0):
        self.endpoint = endpoint
        self.cache = cache
        self.use_cache = use_cache and cache is not None
        self.usage = usage if usage is not None else RunUsage()
        self.retry_base_s, self.retry_max_s = retry_base_s, retry_max_s
        self._slots = asyncio.Semaphore(endpoint.max_concurrency)
        # aiohttp under the SDK (its supported `openai[aiohttp]` backend): far less CPU per request
        # than the default transport, which matters when one core drives hundreds of requests a second.
        self._openai = openai.AsyncOpenAI(
            base_url=endpoint.base_url, api_key=self._current_key, max_retries=0, timeout=endpoint.timeout_s,
            http_client=openai.DefaultAioHttpClient(timeout=endpoint.timeout_s),
        )

    async def _current_key(self) -> str:
        """Read per request, so a rotated key takes effect at once and none is kept here."""
        return self.endpoint.api_key() or NO_KEY

    async def __aenter__(self) -> "ModelClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._openai.close()

    # ------------------------------------------------------------------ answers

    async def chat(self, request: ChatRequest) -> ChatResult:
        messages = [dict(message) for message in request.messages]
        return await self._answer("chat", messages, request.params, request.n, request.sample_index, request.key)

    async def complete(self, prompt: str, *, params: dict | None = None, n: int = 1, sample_index: int = 0,
                       key: str = "") -> ChatResult:
        """A plain-text completion (``/v1/completions``), cached and counted like chat."""
        return await self._answer("completion", prompt, params, n, sample_index, key)

    async def chat_many(self, requests: Sequence[ChatRequest], *,
                        on_result: Callable[[ChatResult], None] | None = None) -> list[ChatResult]:
        """Every request's result, in request order; ``on_result`` sees each as it finishes.

        A few workers per concurrency slot keep the slots busy while others wait out a backoff,
        without making one task per request for a run of 100,000.
        """
        requests = list(requests)
        results: list[ChatResult | None] = [None] * len(requests)
        pending = iter(range(len(requests)))

        async def worker() -> None:
            for index in pending:
                results[index] = await self.chat(requests[index])
                if on_result is not None:
                    on_result(results[index])

        try:
            async with asyncio.TaskGroup() as group:
                for _ in range(min(len(requests), self.endpoint.max_concurrency * 4)):
                    group.create_task(worker())
        except ExceptionGroup as errors:  # on_result raised: the caller sees its own exception
            raise errors.exceptions[0] from None
        return results

    async def _answer(self, kind: str, prompt: object, params: dict | None, n: int, sample_index: int,
                      key: str) -> ChatResult:
        started = time.perf_counter()
        merged = merge_params(self.endpoint.default_params, params)
        cache_id = None
        if self.use_cache:
            cache_id = cache_key(self.endpoint, kind=kind, prompt=prompt, params=merged, n=n, sample_index=sample_index)
            hit = self.cache.get(cache_id)
            if hit is not None:
                result = result_from_cache(key, hit, time.perf_counter() - started)
                self.usage.record(result)
                return result
        result = await self._sample(kind, prompt, merged, n, key, started)
        if result.ok and cache_id is not None:
            self._store(cache_id, result)
        self.usage.record(result)
        return result

    def _store(self, cache_id: str, result: ChatResult) -> None:
        try:
            self.cache.put(cache_id, cache_value(result))
        except Exception:  # a full disk must not throw away an answer that was paid for
            log.warning("could not write to the response cache %s", self.cache.path, exc_info=True)

    async def _sample(self, kind: str, prompt: object, params: dict, n: int, key: str, started: float) -> ChatResult:
        """Ask for n samples; when the server returns fewer (it ignores ``n``), ask again for the rest."""
        answer, attempts = Answer(), 0
        error = self.endpoint.missing_key_reason()
        while error is None and len(answer.texts) < n:
            body = request_body(self.endpoint.model, kind, prompt, params, n - len(answer.texts), len(answer.texts))
            try:
                more, tries = await self._send(kind, body)
            except GaveUp as gave_up:
                error, attempts = str(gave_up), attempts + gave_up.attempts
            else:
                answer.extend(more, n)
                attempts += tries
        return ChatResult(
            key=key, texts=answer.texts if error is None else [], finish_reasons=answer.finish_reasons if error is None else [],
            prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
            cost=self.endpoint.cost(answer.prompt_tokens, answer.completion_tokens),
            latency_s=time.perf_counter() - started, cached=False, attempts=attempts, error=error,
        )

    async def _send(self, kind: str, body: dict) -> tuple[Answer, int]:
        """One request, retried while the failure is worth retrying; GaveUp when it is not."""
        attempt = 0
        while True:
            attempt += 1
            try:
                async with self._slots:
                    return await self._attempt(kind, body), attempt
            except Failure as failure:
                if not failure.retryable or attempt > self.endpoint.max_retries:
                    raise GaveUp(failure, attempt) from None
                await asyncio.sleep(self._delay(attempt, failure))

    async def _attempt(self, kind: str, body: dict) -> Answer:
        try:
            async with asyncio.timeout(self.endpoint.timeout_s):
                response = await self._openai.post(PATHS[kind], body=body, cast_to=httpx2.Response)
        except Exception as error:  # cancellation (BaseException) passes through untouched
            raise self._failure(error) from error
        return parse_answer(response.content, kind)

    def _failure(self, error: BaseException) -> Failure:
        return classify(error, timeout_s=self.endpoint.timeout_s, secret=self.endpoint.api_key())

    def _delay(self, attempt: int, failure: Failure) -> float:
        return backoff_delay(attempt, failure, base_s=self.retry_base_s, max_s=self.retry_max_s)

    # ------------------------------------------------------------------ streaming

    async def stream_chat(self, request: ChatRequest, *, usage: RunUsage | None = None) -> AsyncIterator[str]:
        """Text pieces as the server makes them (not cached). Failures before the first piece are
        retried like ``chat``; then, or after it, a ModelError carries the plain reason.

        Closing the generator early (or cancelling the task that reads it) closes the HTTP stream, so the
        server sees the disconnect and stops generating. ``usage``, when given, also records this one
        stream (the tokens of one chat answer), beside the client's own running total.
        """
        stream = _StreamRun(time.perf_counter())
        try:
            async with aclosing(self._stream_with_retries(request, stream)) as pieces:
                async for piece in pieces:
                    yield piece
        except ModelError as error:
            stream.error = error.reason
            raise
        finally:
            result = stream.result(request.key, self.endpoint)
            self.usage.record(result)
            if usage is not None:
                usage.record(result)

    async def _stream_with_retries(self, request: ChatRequest, stream: "_StreamRun") -> AsyncIterator[str]:
        missing = self.endpoint.missing_key_reason()
        if missing:
            raise ModelError(missing)
        messages = [dict(message) for message in request.messages]
        params = merge_params(self.endpoint.default_params, request.params)
        while True:
            stream.attempts += 1
            try:
                async with self._slots, aclosing(self._stream_once(messages, params, stream)) as pieces:
                    async for piece in pieces:
                        yield piece
                return
            except Failure as failure:
                if stream.pieces:
                    raise ModelError(f"the answer broke off after {len(stream.text)} characters: {failure.reason}",
                                     attempts=stream.attempts) from None
                if not failure.retryable or stream.attempts > self.endpoint.max_retries:
                    raise ModelError(failure.final_reason(stream.attempts), attempts=stream.attempts) from None
                delay = self._delay(stream.attempts, failure)
            await asyncio.sleep(delay)

    async def _stream_once(self, messages: list[dict], params: dict, stream: "_StreamRun") -> AsyncIterator[str]:
        try:
            async with asyncio.timeout(self.endpoint.timeout_s):  # until the answer starts
                chunks = await self._openai.chat.completions.create(
                    model=self.endpoint.model, messages=messages, stream=True,
                    stream_options={"include_usage": True}, extra_body=params,
                )
        except Exception as error:
            raise self._failure(error) from error
        try:
            async for chunk in chunks:
                for piece in stream.take(chunk):
                    yield piece
        except Exception as error:
            raise self._failure(error) from error
        finally:
            await chunks.close()
        if not stream.pieces:
            raise Failure("the stream ended without any text", retryable=True)


class _StreamRun:
    """What one stream_chat call gathered, for the usage record."""

    def __init__(self, started: float):
        self.started = started
        self.pieces: list[str] = []
        self.finish_reason = ""
        self.prompt_tokens = self.completion_tokens = self.attempts = 0
        self.error: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def take(self, chunk) -> list[str]:
        """The new text of choice 0 in one chunk; remembers finish reason and usage on the way."""
        if chunk.usage is not None:
            self.prompt_tokens = chunk.usage.prompt_tokens or 0
            self.completion_tokens = chunk.usage.completion_tokens or 0
        new = []
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
            if choice.delta is not None and choice.delta.content:
                self.pieces.append(choice.delta.content)
                new.append(choice.delta.content)
        return new

    def result(self, key: str, endpoint: EndpointConfig) -> ChatResult:
        ok = self.error is None
        return ChatResult(
            key=key, texts=[self.text] if ok else [], finish_reasons=[self.finish_reason] if ok else [],
            prompt_tokens=self.prompt_tokens, completion_tokens=self.completion_tokens,
            cost=endpoint.cost(self.prompt_tokens, self.completion_tokens),
            latency_s=time.perf_counter() - self.started, cached=False, attempts=self.attempts, error=self.error,
        )
