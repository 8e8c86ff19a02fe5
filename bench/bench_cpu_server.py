"""Benchmark: SmolLM2 through Errata's CPU model server over loopback HTTP, 1 stream vs 8 concurrent streams."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOKENS = 64
STREAMS = 8
REPEATS = 3  # best of: the machine is shared, so the least disturbed run is the fairest figure
PROMPT = "Write a short story about a robot who learns to paint."
SERVER = """
import sys
from gpu_worker.engine import ModelSpec
from gpu_worker.server import run_server
run_server([ModelSpec("smollm2", sys.argv[1])], port=int(sys.argv[2]), max_batch_size=8, log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if json.loads(response.read()).get("status") == "ok":
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the server did not become healthy")


async def one_stream(client, tokens: int) -> int:
    """Stream one chat answer of exactly ``tokens`` tokens; returns the completion tokens the server counted."""
    stream = await client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": PROMPT}], max_tokens=tokens, temperature=0,
        stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True},
    )
    counted = 0
    async for chunk in stream:
        if chunk.usage:
            counted = chunk.usage.completion_tokens
    return counted


async def tokens_per_second(client, streams: int) -> float:
    best = 0.0
    for _ in range(REPEATS):
        started = time.perf_counter()
        counts = await asyncio.gather(*(one_stream(client, TOKENS) for _ in range(streams)))
        elapsed = time.perf_counter() - started
        assert counts == [TOKENS] * streams, counts
        best = max(best, sum(counts) / elapsed)
    return best


async def measure(url: str) -> tuple[float, float]:
    import openai

    async with openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="not-needed", max_retries=0, timeout=600) as client:
        await asyncio.gather(*(one_stream(client, 4) for _ in range(STREAMS)))  # warm-up
        return await tokens_per_second(client, 1), await tokens_per_second(client, STREAMS)


def main() -> None:
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gpu_worker.smollm2 import smollm2_folder

    folder = smollm2_folder()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(folder), str(port)], cwd=REPO)
    try:
        wait_until_healthy(url, server)
        single, many = asyncio.run(measure(url))
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    print(f"BENCH cpu_server_tokens_per_s {single:.1f} tokens/s")
    print(f"BENCH cpu_server_tokens_per_s_8_streams {many:.1f} tokens/s")
    print(f"BENCH cpu_server_concurrency_ratio {many / single:.2f} ratio")


if __name__ == "__main__":
    main()
