"""load_lora_adapter / unload_lora_adapter against Errata's real CPU model server, over HTTP."""

from __future__ import annotations

import socket
from pathlib import Path

import openai
import pytest

from pipeline.models.adapters import AdapterLoadError, load_lora_adapter, unload_lora_adapter
from pipeline.models.endpoint import EndpointConfig
from tests.gpu_worker.tiny import build_tiny_adapter, build_tiny_model, serve_in_thread

KEY_ENV = "ERRATA_TEST_MODEL_SERVER_KEY"
KEY = "sk-errata-test-server"


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("adapters")
    base = build_tiny_model(root / "tiny")
    return {"base": base, "tutor": build_tiny_adapter(base, root / "tutor", seed=5),
            "other": build_tiny_adapter(base, root / "other", seed=6)}


@pytest.fixture(scope="module")
def server(folders) -> str:
    """Errata's CPU server on the tiny model, with an API key, as `python -m gpu_worker serve` runs it."""
    from gpu_worker.engine import Engine, ModelSpec
    from gpu_worker.server import create_app

    with Engine([ModelSpec("tiny", str(folders["base"]))], num_threads=1) as engine:
        with serve_in_thread(create_app(engine, api_key=KEY)) as url:
            yield url


@pytest.fixture
def config(server, monkeypatch) -> EndpointConfig:
    monkeypatch.setenv(KEY_ENV, KEY)
    return EndpointConfig(name="cpu", base_url=f"{server}/v1", model="tiny", api_key_env=KEY_ENV, timeout_s=60)


def served(config: EndpointConfig) -> dict[str, str | None]:
    with openai.OpenAI(base_url=config.base_url, api_key=config.api_key(), max_retries=0) as client:
        return {model.id: model.parent for model in client.models.list()}


def test_an_adapter_is_registered_answers_and_is_unregistered(config, folders):
    load_lora_adapter(config, name="tutor", path=str(folders["tutor"]), base_model="tiny")
    assert served(config) == {"tiny": None, "tutor": "tiny"}
    with openai.OpenAI(base_url=config.base_url, api_key=KEY, max_retries=0) as client:
        answer = client.chat.completions.create(model="tutor", messages=[{"role": "user", "content": "hi"}],
                                                max_tokens=4, temperature=0)
    assert answer.model == "tutor" and answer.usage.completion_tokens > 0
    unload_lora_adapter(config, name="tutor")
    assert served(config) == {"tiny": None}


def test_registering_the_same_folder_twice_is_harmless_but_another_folder_is_refused(config, folders):
    load_lora_adapter(config, name="twice", path=str(folders["tutor"]))
    try:
        load_lora_adapter(config, name="twice", path=str(folders["tutor"]) + "/")  # the same folder, spelt apart
        with pytest.raises(AdapterLoadError, match=r"'twice' is already served from .*tutor, not from .*other; unload"):
            load_lora_adapter(config, name="twice", path=str(folders["other"]))
    finally:
        unload_lora_adapter(config, name="twice")


@pytest.mark.parametrize(
    "call, says",
    [
        (lambda config, tmp: load_lora_adapter(config, name="x", path=str(tmp)),
         r"loading adapter 'x' failed: HTTP 404: Loading lora x failed: No adapter found"),
        (lambda config, tmp: load_lora_adapter(config, name="x", path=str(tmp), base_model="gpt-9"),
         r"HTTP 404: The model `gpt-9` does not exist"),
        (lambda config, tmp: unload_lora_adapter(config, name="never-loaded"),
         r"unloading adapter 'never-loaded' failed: HTTP 404: The lora adapter 'never-loaded' cannot be found"),
    ],
)
def test_the_servers_refusal_comes_back_in_its_own_words(config, tmp_path, call, says):
    with pytest.raises(AdapterLoadError, match=says):
        call(config, tmp_path)


def test_a_wrong_or_missing_key_is_reported_without_showing_it(config, folders, monkeypatch):
    monkeypatch.setenv(KEY_ENV, "sk-not-the-key")
    with pytest.raises(AdapterLoadError, match="HTTP 401: Unauthorized") as refused:
        load_lora_adapter(config, name="x", path=str(folders["tutor"]))
    assert "sk-not-the-key" not in str(refused.value)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(AdapterLoadError, match=f"{KEY_ENV} .* is not set"):
        load_lora_adapter(config, name="x", path=str(folders["tutor"]))


def test_an_unreachable_server_is_an_adapter_load_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens once the socket is closed
    config = EndpointConfig(name="gone", base_url=f"http://127.0.0.1:{port}/v1", model="tiny", timeout_s=5)
    with pytest.raises(AdapterLoadError, match="did not answer: could not connect"):
        unload_lora_adapter(config, name="x")
