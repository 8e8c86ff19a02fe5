"""A fault-injecting OpenAI-compatible HTTP server for tests and benchmarks (loopback only).

It answers ``/v1/models``, ``/v1/chat/completions`` (with and without ``stream``) and
``/v1/completions`` deterministically: the text names a hash of the last user message (or the
prompt), so a test can check that every answer belongs to its own request. On a chosen share
of requests it misbehaves instead: 429 with ``Retry-After``, 500, a malformed JSON body, a 200
without choices, a hang (no answer until the client gives up) or a real TCP reset.

Whether a request misbehaves is decided by a hash of (seed, request body, attempt number), so
a retry of the same request draws again and can succeed, and a rerun behaves identically.
A streamed answer comes in ``stream_chunks`` pieces ``stream_delay_s`` apart; a client that hangs up
before the last one is counted in ``stats()["outcomes"]["stream_cut"]``.

It runs as its own process (``python -m tests.fakeopenai``) so that in a benchmark it does not
share the client's GIL; :class:`FakeOpenAI` starts and stops it and reads its counters::

    with FakeOpenAI(latency_s=0.1, fault_rate=0.2) as server:
        client = ModelClient(EndpointConfig("fake", server.base_url, "fake-model"))
        ...
        server.stats()["received"]["chat"]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, fields
from pathlib import Path

FAULT_KINDS = ("429", "500", "malformed", "empty", "hang", "reset")
REPO = Path(__file__).resolve().parents[1]


@dataclass
class FakeConfig:
    """How the server behaves; every field can be changed on a running server with ``configure``."""

    latency_s: float = 0.0            # added before every answer (asyncio.sleep: scales with concurrency)
    fault_rate: float = 0.0           # share of attempts that misbehave
    faults: tuple[str, ...] = FAULT_KINDS
    fail_first: int = 0               # the first N attempts of every distinct request misbehave (faults[0])
    seed: int = 0
    retry_after: str = "1"            # the Retry-After header sent with 429
    n_supported: bool = True          # False: ignore ``n`` and answer one choice
    api_key: str = ""                 # when set, other keys get 401 (the message repeats the key, like a careless server)
    stream_chunks: int = 4            # a streamed answer comes in this many content pieces
    stream_delay_s: float = 0.01      # pause between streamed pieces
    stream_script: tuple = ()         # when set, every streamed answer is exactly these pieces (split points matter)
    hang_s: float = 3600.0            # how long a hang lasts if the client never gives up
    record_bodies: bool = True        # keep request bodies for ``bodies()``
    reply_with: str = ""              # when set, every answer is this text (e.g. markup, to test escaping)
    replies: tuple = ()               # (substring, text) pairs: the first whose substring is in the request wins


FAKE_SETTINGS = {f.name for f in fields(FakeConfig)}


def answer_text(content: str, index: int = 0, seed: object = None) -> str:
    """The text the server answers to ``content`` (choice ``index``); tests compute it to check answers."""
    digest = hashlib.sha256(content.encode()).hexdigest()[:12]
    salt = "" if seed is None else f" seed {seed}"
    return f"Answer {digest} sample {index}{salt}. The answer is {len(content)}. END of reply."


def _digest(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts``."""
    raw = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).digest()
    return int.from_bytes(raw[:8], "big") / 2**64


class FakeState:
    """What the server was asked and how it chose to answer; one per server process."""

    def __init__(self, config: FakeConfig):
        self.config = config
        self.reset()

    def reset(self) -> None:
        self.received: collections.Counter = collections.Counter()    # per kind
        self.outcomes: collections.Counter = collections.Counter()    # ok / fault kind
        self.attempts_by_body: collections.Counter = collections.Counter()
        self.answered_by_content: collections.Counter = collections.Counter()
        self.bodies: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.connections = 0                 # every TCP connection, control calls included
        self.api_connections: set[int] = set()  # connections that carried a /v1 request

    def choose_fault(self, body_key: str) -> str | None:
        """The fault for this attempt of this body (or None), counting the attempt."""
        attempt = self.attempts_by_body[body_key]
        self.attempts_by_body[body_key] += 1
        config = self.config
        if attempt < config.fail_first:
            return config.faults[0]
        if config.fault_rate and _digest(config.seed, body_key, attempt, "fault?") < config.fault_rate:
            kinds = config.faults
            return kinds[int(_digest(config.seed, body_key, attempt, "which") * len(kinds))]
        return None

    def stats(self) -> dict:
        return {
            "received": dict(self.received),
            "outcomes": dict(self.outcomes),
            "answered_by_content": dict(self.answered_by_content),
            "max_in_flight": self.max_in_flight,
            "connections": self.connections,
            "api_connections": len(self.api_connections),
            "in_flight": self.in_flight,
            "cpu_s": time.process_time(),
        }


# ---------------------------------------------------------------- HTTP plumbing (raw asyncio)

class Request:
    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes):
        self.method, self.path, self.headers, self.body = method, path, headers, body


async def read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request off the connection, or None when the client closed it."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    body = await reader.readexactly(length) if length else b""
    return Request(method, path, headers, body)


def response_bytes(status: int, body: bytes, content_type: str = "application/json", extra: dict | None = None) -> bytes:
    reasons = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 429: "Too Many Requests",
               500: "Internal Server Error"}
    head = [f"HTTP/1.1 {status} {reasons.get(status, 'Status')}", f"content-type: {content_type}",
            f"content-length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in (extra or {}).items()]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def json_response(status: int, payload: dict, extra: dict | None = None) -> bytes:
    return response_bytes(status, json.dumps(payload).encode(), extra=extra)


def reset_connection(writer: asyncio.StreamWriter) -> None:
    """Drop the TCP connection with an RST (SO_LINGER 0), sending nothing."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


# ---------------------------------------------------------------- the OpenAI-shaped answers

def request_content(kind: str, payload: dict) -> str:
    """The text the answer is derived from: the last user message, or the prompt."""
    if kind == "completion":
        prompt = payload.get("prompt", "")
        return prompt if isinstance(prompt, str) else json.dumps(prompt)
    users = [m.get("content", "") for m in payload.get("messages", []) if m.get("role") == "user"]
    last = users[-1] if users else ""
    return last if isinstance(last, str) else json.dumps(last)


def shaped_text(text: str, payload: dict) -> tuple[str, str]:
    """Apply ``stop`` and ``max_tokens`` (a token is a word here) like a real server; returns (text, finish)."""
    finish = "stop"
    stops = payload.get("stop") or []
    for stop in [stops] if isinstance(stops, str) else stops:
        if stop and stop in text:
            text = text[: text.index(stop)]
    max_tokens = payload.get("max_tokens")
    if max_tokens is not None and len(text.split(" ")) > int(max_tokens):
        text, finish = " ".join(text.split(" ")[: int(max_tokens)]), "length"
    return text, finish


def count_tokens(text: str) -> int:
    return len(text.split())


def completion_payload(kind: str, payload: dict, content: str, config: FakeConfig) -> dict:
    n = int(payload.get("n") or 1) if config.n_supported else 1
    choices, completion_tokens = [], 0
    for index in range(n):
        scripted = next((reply for needle, reply in config.replies if needle in content), None)
        text, finish = shaped_text(scripted or config.reply_with or answer_text(content, index, payload.get("seed")), payload)
        completion_tokens += count_tokens(text)
        if kind == "completion":
            choices.append({"index": index, "text": text, "finish_reason": finish, "logprobs": None})
        else:
            choices.append({"index": index, "message": {"role": "assistant", "content": text},
                            "finish_reason": finish, "logprobs": None})
    prompt_tokens = count_tokens(json.dumps(payload.get("messages", payload.get("prompt", ""))))
    return {
        "id": f"fake-{hashlib.sha256(content.encode()).hexdigest()[:8]}",
        "object": "text_completion" if kind == "completion" else "chat.completion",
        "created": int(time.time()), "model": payload.get("model", "fake-model"), "choices": choices,
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
        "fake_received": {k: v for k, v in payload.items() if k not in ("messages", "prompt")},
    }


def sse_event(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    frame = f"data: {data}\n\n".encode()
    return f"{len(frame):x}\r\n".encode() + frame + b"\r\n"


def stream_pieces(text: str, count: int) -> list[str]:
    size = max(1, -(-len(text) // max(1, count)))
    return [text[i: i + size] for i in range(0, len(text), size)]


# ---------------------------------------------------------------- the server

class FakeServer:
    """The asyncio server; one ``handle`` coroutine per connection, keep-alive, no pipelining."""

    def __init__(self, config: FakeConfig):
        self.state = FakeState(config)

    @property
    def config(self) -> FakeConfig:
        return self.state.config

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.state.connections += 1
        connection = self.state.connections
        try:
            while True:
                request = await read_request(reader)
                if request is None:
                    break
                keep_open = await self.dispatch(request, reader, writer, connection)
                if not keep_open or request.headers.get("connection", "").lower() == "close":
                    break
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if not writer.transport.is_closing():
                writer.close()

    async def dispatch(self, request: Request, reader, writer, connection: int) -> bool:
        path = request.path.split("?", 1)[0].rstrip("/")
        if path.startswith("/_fake/"):
            writer.write(self.control(request.method, path, request.body))
            return True
        self.state.api_connections.add(connection)
        if path == "/v1/models":
            self.state.received["models"] += 1
            models = {"object": "list", "data": [{"id": "fake-model", "object": "model", "owned_by": "errata-tests"}]}
            writer.write(json_response(200, models))
            return True
        kinds = {"/v1/chat/completions": "chat", "/v1/completions": "completion"}
        if request.method != "POST" or path not in kinds:
            writer.write(json_response(404, {"error": {"message": f"no route {request.method} {path}"}}))
            return True
        state = self.state
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await self.generate(kinds[path], request, reader, writer)
        finally:
            state.in_flight -= 1

    async def generate(self, kind: str, request: Request, reader, writer) -> bool:
        state, config = self.state, self.config
        try:
            payload = json.loads(request.body)
        except ValueError:
            writer.write(json_response(400, {"error": {"message": "body is not JSON"}}))
            return True
        streaming = bool(payload.get("stream"))
        state.received[kind + ("_stream" if streaming else "")] += 1
        if config.record_bodies:
            state.bodies.append(payload)
        if config.api_key and request.headers.get("authorization") != f"Bearer {config.api_key}":
            writer.write(self.unauthorized(request))
            return True
        if config.latency_s:
            await asyncio.sleep(config.latency_s)
        fault = state.choose_fault(request.body.decode())
        if fault:
            state.outcomes[fault] += 1
            return await self.misbehave(fault, reader, writer)
        content = request_content(kind, payload)
        state.outcomes["ok"] += 1
        if streaming:
            await self.stream(kind, payload, content, writer)
            state.answered_by_content[content] += 1
            return False
        writer.write(json_response(200, completion_payload(kind, payload, content, config)))
        await writer.drain()
        state.answered_by_content[content] += 1
        return True

    def unauthorized(self, request: Request) -> bytes:
        """401, repeating the wrong key in the message as careless servers do (the client must hide it)."""
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        self.state.outcomes["401"] += 1
        error = {"message": f"Incorrect API key provided: {given}.", "type": "invalid_request_error",
                 "code": "invalid_api_key"}
        return json_response(401, {"error": error})

    async def misbehave(self, fault: str, reader, writer) -> bool:
        if fault == "429":
            error = {"message": "Rate limit reached, slow down.", "type": "rate_limit_error"}
            writer.write(json_response(429, {"error": error}, {"retry-after": self.config.retry_after}))
        elif fault == "500":
            writer.write(json_response(500, {"error": {"message": "The server had an error.", "type": "server_error"}}))
        elif fault == "malformed":
            writer.write(response_bytes(200, b'{"id": "fake", "choices": [{"index": 0, "message": {"con'))
        elif fault == "empty":
            writer.write(json_response(200, {"id": "fake", "object": "chat.completion", "choices": []}))
        elif fault == "hang":
            # Wait until the client hangs up (read returns b"") or hang_s passes, then close without answering.
            try:
                await asyncio.wait_for(reader.read(1), self.config.hang_s)
            except asyncio.TimeoutError:
                pass
            return False
        elif fault == "reset":
            reset_connection(writer)
            return False
        await writer.drain()
        return True

    async def stream(self, kind: str, payload: dict, content: str, writer) -> None:
        """Send the first choice as SSE pieces (chunked encoding), then [DONE], then close."""
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n"
                     b"connection: close\r\n\r\n")
        full = completion_payload(kind, payload, content, self.config)
        text = full["choices"][0].get("text", full["choices"][0].get("message", {}).get("content", ""))
        pieces = list(self.config.stream_script) or stream_pieces(text, self.config.stream_chunks)
        text = "".join(pieces)
        base = {"id": full["id"], "object": "chat.completion.chunk", "created": full["created"], "model": full["model"]}
        try:
            for piece in pieces:
                if writer.transport.is_closing():
                    raise ConnectionResetError("the client closed the stream")
                delta = {"index": 0, "text": piece} if kind == "completion" else {"index": 0, "delta": {"content": piece}}
                writer.write(sse_event({**base, "choices": [{**delta, "finish_reason": None}]}))
                await writer.drain()
                await asyncio.sleep(self.config.stream_delay_s)
        except ConnectionError:
            self.state.outcomes["stream_cut"] += 1  # the client hung up mid-answer (a stop button, a closed tab)
            raise
        last = {"index": 0, "delta": {}, "finish_reason": full["choices"][0]["finish_reason"]}
        writer.write(sse_event({**base, "choices": [last]}))
        if (payload.get("stream_options") or {}).get("include_usage"):
            usage = {**full["usage"], "completion_tokens": count_tokens(text)}
            writer.write(sse_event({**base, "choices": [], "usage": usage}))
        writer.write(sse_event("[DONE]") + b"0\r\n\r\n")
        await writer.drain()

    def control(self, method: str, path: str, body: bytes) -> bytes:
        """The test-only endpoints: stats, bodies, configure (resets the counters)."""
        if path == "/_fake/stats":
            return json_response(200, self.state.stats())
        if path == "/_fake/bodies":
            return json_response(200, {"bodies": self.state.bodies})
        if path == "/_fake/configure" and method == "POST":
            self.state.config = config_from(json.loads(body or b"{}"), base=FakeConfig())
            self.state.reset()
            return json_response(200, asdict(self.state.config))
        if path == "/_fake/update" and method == "POST":
            self.state.config = config_from(json.loads(body or b"{}"), base=self.state.config)
            return json_response(200, asdict(self.state.config))
        return json_response(404, {"error": {"message": f"no control {path}"}})


def config_from(changes: dict, base: FakeConfig) -> FakeConfig:
    known = {f.name for f in fields(FakeConfig)}
    unknown = set(changes) - known
    if unknown:
        raise ValueError(f"unknown fake server settings: {sorted(unknown)}")
    values = {**asdict(base), **changes}
    values["faults"] = tuple(values["faults"])
    values["replies"] = tuple(tuple(pair) for pair in values["replies"])
    values["stream_script"] = tuple(values["stream_script"])
    bad = set(values["faults"]) - set(FAULT_KINDS)
    if bad:
        raise ValueError(f"unknown faults {sorted(bad)}; choose from {FAULT_KINDS}")
    return FakeConfig(**values)


async def serve(config: FakeConfig, port: int = 0) -> None:
    server = FakeServer(config)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", port, backlog=1024, limit=2**20)
    chosen = listener.sockets[0].getsockname()[1]
    print(f"LISTENING {chosen}", flush=True)
    async with listener:
        await listener.serve_forever()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fault-injecting OpenAI-compatible server (tests only).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--config", default="{}", help="FakeConfig fields as JSON")
    args = parser.parse_args(argv)
    try:
        asyncio.run(serve(config_from(json.loads(args.config), FakeConfig()), args.port))
    except KeyboardInterrupt:
        pass


# ---------------------------------------------------------------- the handle tests and benches use

class FakeOpenAI:
    """Starts the server in its own process on a free loopback port; a context manager.

    ``configure(**settings)`` replaces the behaviour (unnamed settings go back to defaults) and
    zeroes the counters, so one process can serve a whole test module. Setting a FakeConfig
    field on a running server (``server.reply_with = "..."``) changes just that setting.
    """

    def __init__(self, **settings):
        config_from(settings, FakeConfig())  # fail early on a misspelt setting
        self.__dict__.update(settings=settings, process=None, port=0)

    def __setattr__(self, name: str, value) -> None:
        if name in FAKE_SETTINGS:
            self.settings = {**self.settings, name: value}
            if self.port:
                self._call("/_fake/update", {name: value})
            return
        super().__setattr__(name, value)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> "FakeOpenAI":
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakeopenai", "--config", json.dumps(self.settings)],
            cwd=REPO, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        line = self.process.stdout.readline()
        if not line.startswith("LISTENING "):
            self.stop()
            raise RuntimeError(f"fake OpenAI server did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process and self.process.stdout:
            self.process.stdout.close()

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _call(self, path: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        url = f"http://127.0.0.1:{self.port}{path}"
        with urllib.request.urlopen(urllib.request.Request(url, data=data, method="POST" if data else "GET"), timeout=10) as resp:
            return json.loads(resp.read())

    def configure(self, **settings) -> dict:
        """Start over: these settings, defaults for the rest, counters at zero."""
        self.settings = settings
        return self._call("/_fake/configure", settings)

    def stats(self) -> dict:
        return self._call("/_fake/stats")

    def bodies(self) -> list[dict]:
        return self._call("/_fake/bodies")["bodies"]


if __name__ == "__main__":
    main()
