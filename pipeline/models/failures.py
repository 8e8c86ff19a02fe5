"""Why a model call failed, in plain words, whether to retry it, and how long to wait first."""

from __future__ import annotations

import email.utils
import random
import time

import httpx2
import openai

RETRIED_STATUSES = {408, 409, 429}   # plus every 5xx
MAX_MESSAGE_CHARS = 300


class Failure(Exception):
    """One failed attempt: the reason to report, whether another attempt may succeed, and the
    wait the server asked for (Retry-After), if any."""

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None, status: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after
        self.status = status

    def final_reason(self, attempts: int) -> str:
        """The reason as reported after ``attempts`` tries: "HTTP 500 after 6 attempts: ..."."""
        if attempts <= 1:
            return self.reason
        if self.status is not None:
            head, _, rest = self.reason.partition(": ")
            return f"{head} after {attempts} attempts: {rest}" if rest else f"{head} after {attempts} attempts"
        return f"{self.reason} (gave up after {attempts} attempts)"


def classify(error: BaseException, *, timeout_s: float, secret: str = "") -> Failure:
    """Turn whatever the openai client, httpx or asyncio raised into a Failure (``secret`` is blanked out)."""
    if isinstance(error, Failure):
        return error
    if isinstance(error, openai.APIStatusError):
        return status_failure(error, secret)
    if _network_root(error) is not None:
        # The aiohttp adapter reports a refused or dropped connection as a timeout: trust the root cause.
        return connection_failure(error)
    if isinstance(error, (TimeoutError, openai.APITimeoutError, httpx2.TimeoutException)):
        return Failure(f"timed out after {timeout_s:g} s", retryable=True)
    if isinstance(error, openai.APIConnectionError):
        return connection_failure(error)
    if isinstance(error, (httpx2.TransportError, OSError)):
        return connection_failure(error)
    if isinstance(error, openai.APIError):  # e.g. an error event inside a stream
        return Failure(f"server error: {short(redact(error.message, secret))}", retryable=True)
    raise error


def status_failure(error: openai.APIStatusError, secret: str = "") -> Failure:
    status = error.status_code
    retryable = status in RETRIED_STATUSES or status >= 500
    retry_after = parse_retry_after(error.response.headers) if status in (429, 503) else None
    return Failure(f"HTTP {status}: {short(redact(error_message(error), secret))}", retryable=retryable, retry_after=retry_after, status=status)


def error_message(error: openai.APIStatusError) -> str:
    """The server's own words: ``error.message`` of an OpenAI-style body, else the body text."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    if isinstance(body, str) and body.strip():
        return body
    try:
        text = error.response.text
    except Exception:  # a streamed body that was never read
        text = ""
    return text if text.strip() else error.response.reason_phrase or "no message"


def _network_root(error: BaseException) -> BaseException | None:
    """The connection-level failure in ``error``'s chain, if that is what it is (a timeout is not)."""
    import aiohttp

    for cause in causes(error):
        if isinstance(cause, (TimeoutError, aiohttp.ServerTimeoutError)):
            return None
        if isinstance(cause, (ConnectionError, aiohttp.ClientConnectionError, aiohttp.ClientPayloadError)):
            return cause
    return None


def connection_failure(error: BaseException) -> Failure:
    """Name the network failure found in the exception chain (reset, refused, closed early)."""
    import aiohttp

    for cause in causes(error):
        if isinstance(cause, (ConnectionResetError, httpx2.ReadError, BrokenPipeError)):
            return Failure("connection reset", retryable=True)
        if isinstance(cause, (ConnectionRefusedError, aiohttp.ClientConnectorError)):
            return Failure(f"could not connect to the server ({short(str(cause)) or type(cause).__name__})", retryable=True)
        if isinstance(cause, (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError)):
            return Failure("connection reset", retryable=True)
        if isinstance(cause, httpx2.RemoteProtocolError):
            return Failure("the server closed the connection without a complete answer", retryable=True)
        if isinstance(cause, (httpx2.ConnectError, ConnectionRefusedError)):
            return Failure(f"could not connect to the server ({short(str(cause)) or type(cause).__name__})", retryable=True)
    last = causes(error)[-1]
    return Failure(f"connection error: {type(last).__name__} {short(str(last))}".strip(), retryable=True)


def causes(error: BaseException) -> list[BaseException]:
    chain, seen = [], set()
    while error is not None and id(error) not in seen:
        chain.append(error)
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return chain


def parse_retry_after(headers) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP date."""
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def backoff_delay(attempt: int, failure: Failure, *, base_s: float, max_s: float) -> float:
    """Exponential backoff with full jitter; the server's Retry-After wins, capped at ``max_s``."""
    if failure.retry_after is not None:
        return min(failure.retry_after, max_s)
    return random.uniform(0, min(max_s, base_s * 2 ** (attempt - 1)))


def short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def redact(text: str, secret: str) -> str:
    """Never show the key, even when a careless server repeats it in its error message."""
    if secret and len(secret) >= 4 and secret in text:
        return text.replace(secret, "[redacted key]")
    return text
