"""Benchmark: 2,000 chat requests through ModelClient at concurrency 64 against the fake server (100 ms latency)."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.models import ChatRequest, EndpointConfig, ModelClient  # noqa: E402
from tests.fakeopenai import FakeOpenAI, answer_text  # noqa: E402

REQUESTS = 2000
CONCURRENCY = 64
LATENCY_S = 0.1
# Sending 2,000 requests one after another takes over 200 s; the sequential baseline times the
# first SEQUENTIAL_SAMPLE of them and scales to 2,000 (each costs the same: latency plus overhead).
SEQUENTIAL_SAMPLE = 100


def make_requests() -> list[ChatRequest]:
    return [
        ChatRequest(messages=[{"role": "user", "content": f"Bench problem {i}: what is {i} + {i}?"}],
                    params={"temperature": 0.7, "max_tokens": 64}, key=str(i))
        for i in range(REQUESTS)
    ]


async def fan_out(endpoint: EndpointConfig, requests: list[ChatRequest]) -> float:
    async with ModelClient(endpoint) as client:
        await client.chat(requests[0])  # warm up: first-request setup (platform probe, connection)
        started = time.perf_counter()
        results = await client.chat_many(requests)
        elapsed = time.perf_counter() - started
    check(requests, results)
    return elapsed


async def one_by_one(endpoint: EndpointConfig, requests: list[ChatRequest]) -> float:
    """The seed scripts' way: one request, wait for its answer, then the next."""
    async with ModelClient(endpoint) as client:
        await client.chat(requests[0])
        started = time.perf_counter()
        results = [await client.chat(request) for request in requests]
        elapsed = time.perf_counter() - started
    check(requests, results)
    return elapsed


def check(requests: list[ChatRequest], results) -> None:
    for request, result in zip(requests, results, strict=True):
        expected = answer_text(request.messages[-1]["content"])
        if not result.ok or result.key != request.key or result.texts != [expected]:
            raise SystemExit(f"bench answer wrong for request {request.key}: {result}")


def main() -> None:
    requests = make_requests()
    with FakeOpenAI(latency_s=LATENCY_S, record_bodies=False) as server:
        endpoint = EndpointConfig("bench", server.base_url, "fake-model", max_concurrency=CONCURRENCY,
                                  timeout_s=30.0, max_retries=0)
        fanned = asyncio.run(fan_out(endpoint, requests))
        sample = asyncio.run(one_by_one(endpoint, requests[:SEQUENTIAL_SAMPLE]))
    sequential = sample * REQUESTS / SEQUENTIAL_SAMPLE
    ideal = REQUESTS * LATENCY_S / CONCURRENCY
    print(f"fan-out {fanned:.2f} s (ideal {ideal:.3f} s); one by one {sample:.2f} s for {SEQUENTIAL_SAMPLE}, "
          f"{sequential:.1f} s scaled to {REQUESTS}", file=sys.stderr, flush=True)
    print(f"BENCH teacher_fanout_efficiency {ideal / fanned:.2f} ratio goal=0.85")
    print(f"BENCH teacher_fanout_speedup {sequential / fanned:.1f} ratio goal=40")


if __name__ == "__main__":
    main()
