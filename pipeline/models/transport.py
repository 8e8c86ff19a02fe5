"""A lean HTTP/1.1 keep-alive transport for httpx on plain http:// (the fan-out to local model servers).

Why: with 64 requests in flight to a local server, httpx's default transport (httpcore + h11 +
anyio) took about 0.9 ms of CPU per request on a 2-core machine, this one about 0.1 ms: the
difference between missing and meeting the fan-out goal (bench/bench_fanout.py). It speaks only what OpenAI-compatible servers answer:
content-length, chunked (SSE streams) and read-until-close bodies. ``https://`` and anything
else go to httpx's own transport, and httpx still routes proxied URLs to its proxy transport.
"""

from __future__ import annotations

import asyncio

import httpx2

MAX_HEAD_BYTES = 64 * 1024


class _Connection(asyncio.Protocol):
    """One TCP connection; received bytes gather in ``buffer`` and wake the one reader."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self._waiter: asyncio.Future | None = None

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer.extend(data)
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.error = exc
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    @property
    def reusable(self) -> bool:
        return not self.eof and not self.buffer and self.transport is not None and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.eof or self.transport.is_closing():
            raise httpx2.WriteError("the connection was closed before the request was sent")
        self.transport.write(data)

    async def fill(self, timeout: float | None) -> bool:
        """Wait for more bytes; False at a clean end of stream, ReadError on a reset, ReadTimeout."""
        if self.error is not None:
            raise httpx2.ReadError(f"connection reset ({self.error})") from self.error
        if self.eof:
            return False
        self._waiter = waiter = self.loop.create_future()
        timer = self.loop.call_later(timeout, _expire, waiter) if timeout is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if self.error is not None and not self.buffer:
            raise httpx2.ReadError(f"connection reset ({self.error})") from self.error
        return bool(self.buffer) or not self.eof

    def take(self, size: int | None = None) -> bytes:
        size = len(self.buffer) if size is None else min(size, len(self.buffer))
        data = bytes(self.buffer[:size])
        del self.buffer[:size]
        return data

    async def read_line(self, timeout: float | None, terminator: bytes = b"\r\n") -> bytes:
        while (end := self.buffer.find(terminator)) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise httpx2.RemoteProtocolError("response head too long")
            if not await self.fill(timeout):
                raise httpx2.RemoteProtocolError("Server disconnected without sending a complete response.")
        return self.take(end + len(terminator))[: -len(terminator)]

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()


def _expire(waiter: asyncio.Future) -> None:
    if not waiter.done():
        waiter.set_exception(httpx2.ReadTimeout("timed out waiting for the server"))


def _parse_head(head: bytes) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise httpx2.RemoteProtocolError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return int(parts[1]), parts[2] if len(parts) > 2 else b"", headers


class _Body(httpx2.AsyncByteStream):
    """The response body; hands the connection back to the pool when read to the end."""

    def __init__(self, pool: "LeanTransport", key, conn: _Connection, framing: str, length: int, keep_alive: bool, timeout):
        self.pool, self.key, self.conn = pool, key, conn
        self.framing, self.remaining, self.keep_alive, self.timeout = framing, length, keep_alive, timeout
        self.done = framing == "empty"

    async def __aiter__(self):
        try:
            if self.framing == "length":
                async for piece in self._by_length():
                    yield piece
            elif self.framing == "chunked":
                async for piece in self._chunked():
                    yield piece
            elif self.framing == "close":
                async for piece in self._until_close():
                    yield piece
        except BaseException:
            self.keep_alive = False
            raise

    async def _by_length(self):
        while self.remaining > 0:
            if not self.conn.buffer and not await self.conn.fill(self.timeout):
                raise httpx2.RemoteProtocolError("Server disconnected before the whole body arrived.")
            piece = self.conn.take(self.remaining)
            self.remaining -= len(piece)
            yield piece
        self.done = True

    async def _chunked(self):
        while True:
            size_line = await self.conn.read_line(self.timeout)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while await self.conn.read_line(self.timeout):  # trailers, up to the blank line
                    pass
                self.done = True
                return
            self.remaining = size
            async for piece in self._by_length():
                yield piece
            await self.conn.read_line(self.timeout)  # the CRLF after each chunk

    async def _until_close(self):
        self.keep_alive = False
        while True:
            if self.conn.buffer:
                yield self.conn.take()
            elif not await self.conn.fill(self.timeout):
                self.done = True
                return

    async def aclose(self) -> None:
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if self.done and self.keep_alive:
            self.pool._release(self.key, conn)
        else:
            conn.close()


class LeanTransport(httpx2.AsyncBaseTransport):
    """Keep-alive connections per (host, port), no limit of its own: the client's semaphore bounds
    how many requests are in flight."""

    def __init__(self, *, max_idle_per_host: int = 64, fallback: httpx2.AsyncBaseTransport | None = None):
        self.max_idle_per_host = max_idle_per_host
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._fallback = fallback
        self._closed = False

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        if request.url.scheme != "http":
            if self._fallback is None:  # no connection limit here either: the semaphore sets it
                limits = httpx2.Limits(max_connections=None, max_keepalive_connections=self.max_idle_per_host)
                self._fallback = httpx2.AsyncHTTPTransport(limits=limits)
            return await self._fallback.handle_async_request(request)
        timeouts = request.extensions.get("timeout") or {}
        key = (request.url.host, request.url.port or 80)
        body = await request.aread()
        conn = await self._connection(key, timeouts.get("connect"))
        try:
            conn.write(_request_bytes(request, body))
            status, reason, headers = await _read_head(conn, timeouts.get("read"))
            framing, length, keep_alive = _framing(request.method, status, headers)
        except BaseException:
            conn.close()
            raise
        stream = _Body(self, key, conn, framing, length, keep_alive, timeouts.get("read"))
        return httpx2.Response(status, headers=headers, stream=stream,
                               extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason})

    async def _connection(self, key: tuple[str, int], timeout: float | None) -> _Connection:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            if conn.reusable:
                return conn
            conn.close()
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                _, conn = await loop.create_connection(lambda: _Connection(loop), key[0], key[1])
        except TimeoutError as error:
            raise httpx2.ConnectTimeout(f"no connection to {key[0]}:{key[1]} within {timeout} s") from error
        except OSError as error:
            raise httpx2.ConnectError(f"{key[0]}:{key[1]}: {error.strerror or error}") from error
        return conn

    def _release(self, key: tuple[str, int], conn: _Connection) -> None:
        idle = self._idle.setdefault(key, [])
        if self._closed or not conn.reusable or len(idle) >= self.max_idle_per_host:
            conn.close()
        else:
            idle.append(conn)

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
        if self._fallback is not None:
            await self._fallback.aclose()


def _request_bytes(request: httpx2.Request, body: bytes) -> bytes:
    lines = [request.method.encode() + b" " + request.url.raw_path + b" HTTP/1.1"]
    chunked = False
    for name, value in request.headers.raw:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            chunked = True
            continue
        if lowered == b"content-length":
            continue
        lines.append(name + b": " + value)
    if body or chunked or request.method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _read_head(conn: _Connection, timeout: float | None):
    while True:
        head = await conn.read_line(timeout, b"\r\n\r\n")
        status, reason, headers = _parse_head(head)
        if not 100 <= status < 200 or status == 101:  # skip "100 Continue" and other interim answers
            return status, reason, headers


def _framing(method: str, status: int, headers: list[tuple[bytes, bytes]]) -> tuple[str, int, bool]:
    """How the body ends: ("empty" | "length" | "chunked" | "close", content length, keep-alive?)."""
    values = {name.lower(): value.lower() for name, value in headers}
    keep_alive = b"close" not in values.get(b"connection", b"")
    if method == "HEAD" or status in (204, 304):
        return "empty", 0, keep_alive
    if b"chunked" in values.get(b"transfer-encoding", b""):
        return "chunked", 0, keep_alive
    if b"content-length" in values:
        length = int(values[b"content-length"])
        return ("length" if length else "empty"), length, keep_alive
    return "close", 0, False
