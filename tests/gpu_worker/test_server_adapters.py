"""Loading and unloading LoRA adapters on Errata's CPU server over real HTTP, as vLLM takes them; the API key."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request

import openai
import pytest

from tests.conftest import wait_for
from tests.gpu_worker.conftest import TINY
from tests.gpu_worker.tiny import build_tiny_adapter, serve_in_thread

HELLO = [{"role": "user", "content": "Hello there!"}]


def post(url: str, body: dict | bytes, key: str | None = None) -> tuple[int, str]:
    """(status, body text) of a JSON POST: success answers are plain text, errors OpenAI-style JSON."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers), timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def message(text: str) -> str:
    return json.loads(text)["error"]["message"]


@pytest.fixture(scope="module")
def adapter_dir(tiny_model_dir, tmp_path_factory) -> str:
    return str(build_tiny_adapter(tiny_model_dir, tmp_path_factory.mktemp("tutor"), seed=4))


@pytest.fixture(scope="module")
def engine(tiny_model_dir):
    """The base model alone, in an engine of this module's own (the shared one must keep its names)."""
    from gpu_worker.engine import Engine, ModelSpec

    with Engine([ModelSpec(TINY, str(tiny_model_dir))], num_threads=1) as engine:
        yield engine


@pytest.fixture(scope="module")
def server(engine) -> str:
    from gpu_worker.server import create_app

    with serve_in_thread(create_app(engine)) as url:
        yield url


@pytest.fixture
def client(server):
    with openai.OpenAI(base_url=f"{server}/v1", api_key="not-needed", max_retries=0, timeout=60) as client:
        yield client


def reply(client, model: str) -> str:
    response = client.chat.completions.create(model=model, messages=HELLO, max_tokens=12, temperature=0,
                                              extra_body={"ignore_eos": True})
    return response.choices[0].message.content


def test_an_adapter_is_loaded_served_and_unloaded_without_a_restart(server, client, adapter_dir):
    base_answer = reply(client, TINY)
    status, text = post(f"{server}/v1/load_lora_adapter", {"lora_name": "tutor", "lora_path": adapter_dir})
    assert (status, text) == (200, "Success: LoRA adapter 'tutor' added successfully.")  # vLLM's words
    cards = {model.id: model for model in client.models.list()}
    assert set(cards) == {TINY, "tutor"}
    assert (cards["tutor"].parent, cards["tutor"].root) == (TINY, adapter_dir)
    assert reply(client, "tutor") != base_answer
    status, text = post(f"{server}/v1/unload_lora_adapter", {"lora_name": "tutor"})
    assert (status, text) == (200, "Success: LoRA adapter 'tutor' removed successfully.")
    assert [model.id for model in client.models.list()] == [TINY]
    with pytest.raises(openai.NotFoundError):
        reply(client, "tutor")
    assert reply(client, TINY) == base_answer


@pytest.mark.parametrize(
    "route, body, status, says",
    [
        ("load", {"lora_name": TINY, "lora_path": "ADAPTER"}, 400, f"The lora adapter '{TINY}' has already been loaded."),
        ("load", {"lora_name": "x", "lora_path": "/no/such/folder"}, 404, "No adapter found for /no/such/folder"),
        ("load", {"lora_name": "x"}, 400, "Both 'lora_name' and 'lora_path' must be provided."),
        ("load", {"lora_name": "", "lora_path": "ADAPTER"}, 400, "Both 'lora_name' and 'lora_path' must be provided."),
        ("load", {"lora_name": "x", "lora_path": "ADAPTER", "load_inplace": True}, 400, "load_inplace is not supported"),
        ("load", {"lora_name": "x", "lora_path": "ADAPTER", "base_model_name": "gpt-9"}, 404, "`gpt-9` does not exist"),
        ("load", b"{oops", 400, "not valid JSON"),
        ("unload", {"lora_name": "never-loaded"}, 404, "The lora adapter 'never-loaded' cannot be found."),
        ("unload", {"lora_name": TINY}, 404, f"The lora adapter '{TINY}' cannot be found."),
        ("unload", {}, 400, "'lora_name' needs to be provided to unload a LoRA adapter."),
    ],
)
def test_a_refused_change_has_vllms_status_and_message(server, adapter_dir, route, body, status, says):
    if isinstance(body, dict):
        body = {key: adapter_dir if value == "ADAPTER" else value for key, value in body.items()}
    answer = post(f"{server}/v1/{route}_lora_adapter", body)
    assert answer[0] == status
    assert says in message(answer[1])


def test_unloading_answers_once_the_adapters_running_stream_has_finished(server, client, adapter_dir, engine):
    assert post(f"{server}/v1/load_lora_adapter", {"lora_name": "busy", "lora_path": adapter_dir})[0] == 200
    pieces, unloaded = [], {}
    stream = client.chat.completions.create(model="busy", messages=HELLO, max_tokens=300, temperature=0,
                                            stream=True, extra_body={"ignore_eos": True})
    chunks = iter(stream)
    pieces.append(next(chunks).choices[0].delta.content or "")

    def unload():
        unloaded["answer"] = post(f"{server}/v1/unload_lora_adapter", {"lora_name": "busy"})

    unloading = threading.Thread(target=unload)
    unloading.start()
    wait_for(lambda: "busy" not in engine.model_names(), timeout=10, interval=0.01, what="the name to go")
    assert "answer" not in unloaded  # still waiting: the stream is using the adapter
    pieces += [chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices]
    unloading.join(timeout=30)
    assert unloaded["answer"][0] == 200
    assert len("".join(pieces)) > 100  # the stream ran to its end on the adapter's weights


def test_a_name_prefix_applies_to_adapter_and_base_names(engine, adapter_dir):
    from gpu_worker.server import create_app

    with serve_in_thread(create_app(engine, served_name_prefix="errata/")) as url:
        body = {"lora_name": "errata/prefixed", "lora_path": adapter_dir, "base_model_name": f"errata/{TINY}"}
        assert post(f"{url}/v1/load_lora_adapter", body) == (
            200, "Success: LoRA adapter 'errata/prefixed' added successfully.")
        with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
            assert client.models.retrieve("errata/prefixed").parent == f"errata/{TINY}"
        assert post(f"{url}/v1/unload_lora_adapter", {"lora_name": "errata/prefixed"})[0] == 200


def test_with_an_api_key_every_v1_route_asks_for_it(engine, adapter_dir):
    from gpu_worker.server import create_app

    with serve_in_thread(create_app(engine, api_key="sk-local-key")) as url:
        body = {"lora_name": "guarded", "lora_path": adapter_dir}
        for wrong in (None, "sk-wrong"):
            status, text = post(f"{url}/v1/load_lora_adapter", body, key=wrong)
            assert status == 401 and "Unauthorized" in message(text)
        with openai.OpenAI(base_url=f"{url}/v1", api_key="sk-wrong", max_retries=0) as client:
            with pytest.raises(openai.AuthenticationError):
                client.models.list()
        with urllib.request.urlopen(f"{url}/health", timeout=10) as response:
            assert response.status == 200  # health checks need no key, as in vLLM
        assert post(f"{url}/v1/load_lora_adapter", body, key="sk-local-key")[0] == 200
        assert post(f"{url}/v1/unload_lora_adapter", {"lora_name": "guarded"}, key="sk-local-key")[0] == 200
