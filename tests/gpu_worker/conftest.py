"""Fixtures for the model server: a tiny model with two LoRA adapters, an engine on it, and a live server."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.gpu_worker.tiny import build_tiny_adapter, build_tiny_model, serve_in_thread

TINY = "tiny"
ADAPTERS = {"tiny-a": 1, "tiny-b": 2}  # adapter model name -> seed of its random weights


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_adapter_dirs(tiny_model_dir, tmp_path_factory) -> dict[str, Path]:
    return {
        name: build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp(name), seed=seed)
        for name, seed in ADAPTERS.items()
    }


@pytest.fixture(scope="session")
def tiny_specs(tiny_model_dir, tiny_adapter_dirs):
    from gpu_worker.engine import ModelSpec

    return [ModelSpec(TINY, str(tiny_model_dir), adapters={name: str(path) for name, path in tiny_adapter_dirs.items()})]


@pytest.fixture(scope="session")
def tiny_engine(tiny_specs):
    """One engine shared by the server tests (loading is quick, but the server is shared too)."""
    from gpu_worker.engine import Engine

    engine = Engine(tiny_specs, max_batch_size=8, batch_window_ms=10, num_threads=1)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tiny_server(tiny_engine) -> str:
    """Base URL (``http://127.0.0.1:<port>``) of Errata's model server on the tiny model, in a thread."""
    from gpu_worker.server import create_app

    with serve_in_thread(create_app(tiny_engine)) as url:
        yield url


@pytest.fixture
def openai_client(tiny_server):
    """The official openai client pointed at the tiny server (no retries: failures show at once)."""
    import openai

    with openai.OpenAI(base_url=f"{tiny_server}/v1", api_key="not-needed", max_retries=0, timeout=60) as client:
        yield client
