"""vLLM: the `vllm serve` argv (pure, on CPU) and, on a GPU machine, a real server and offline batch."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from gpu_worker import vllm as vllm_module
from gpu_worker.vllm import (
    VLLMConfigError,
    lora_module_arg,
    smallest_lora_rank,
    vllm_available,
    vllm_serve_argv,
    vllm_serve_command,
)

from tests.conftest import free_port

needs_vllm = pytest.mark.skipif(not vllm_available(), reason="needs vLLM and a CUDA GPU")


def fake_adapter(folder, rank: int = 8):
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"r": rank, "peft_type": "LORA"}))
    return folder


@pytest.fixture
def base(tmp_path):
    folder = tmp_path / "base"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    return folder


def test_it_builds_the_argv_for_a_base_model(base):
    argv = vllm_serve_argv(model_path=base, served_name="student", host="0.0.0.0", port=8001)
    assert argv == [
        "vllm", "serve", str(base),
        "--served-model-name", "student",
        "--host", "0.0.0.0",
        "--port", "8001",
        "--tensor-parallel-size", "1",
        "--gpu-memory-utilization", "0.9",
        "--dtype", "auto",
    ]


def test_it_enables_lora_with_one_slot_per_adapter(base, tmp_path):
    tutor, critic = fake_adapter(tmp_path / "tutor"), fake_adapter(tmp_path / "critic", rank=16)
    argv = vllm_serve_argv(
        model_path=base, served_name="student", host="127.0.0.1", port=9000, tensor_parallel_size=4,
        lora_modules={"tutor": tutor, "critic": critic}, max_lora_rank=32, gpu_memory_utilization=0.5,
    )
    assert argv[argv.index("--tensor-parallel-size") + 1] == "4"
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.5"
    lora = argv[argv.index("--enable-lora"):]
    assert lora == ["--enable-lora", "--lora-modules", f"tutor={tutor}", f"critic={critic}",
                    "--max-lora-rank", "32", "--max-loras", "2"]


def test_it_adds_the_context_length_and_extra_flags_last(base):
    argv = vllm_serve_argv(model_path=base, served_name="m", host="h", port=1, max_model_len=4096,
                           dtype="bfloat16", extra=["--enforce-eager"])
    assert argv[argv.index("--dtype") + 1] == "bfloat16"
    assert argv[-3:] == ["--max-model-len", "4096", "--enforce-eager"]


def test_an_adapter_path_with_an_equals_sign_goes_as_json(tmp_path):
    # vLLM reads `name=path` only when the item has one '=' and no ','; anything else must be JSON.
    assert lora_module_arg("tutor", "/a/tutor", "student") == "tutor=/a/tutor"
    assert json.loads(lora_module_arg("tutor", "/a/lr=1e-4,r=8", "student")) == {
        "name": "tutor", "path": "/a/lr=1e-4,r=8", "base_model_name": "student"}


def test_runtime_lora_enables_lora_without_adapters_and_returns_the_variable_it_needs(base):
    argv, env = vllm_serve_command(model_path=base, served_name="student", host="h", port=1, runtime_lora=True,
                                   max_lora_rank=128)
    assert argv[argv.index("--dtype") + 2:] == ["--enable-lora", "--max-lora-rank", "128", "--max-loras", "4"]
    assert env == {"VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True"}  # without it vLLM has no load/unload routes


def test_runtime_lora_keeps_the_startup_adapters_with_a_slot_each(base, tmp_path):
    adapters = {name: fake_adapter(tmp_path / name) for name in ("a", "b", "c")}
    argv, _ = vllm_serve_command(model_path=base, served_name="student", host="h", port=1, runtime_lora=True,
                                 lora_modules=adapters, max_loras=2)
    assert argv[argv.index("--lora-modules"):argv.index("--max-lora-rank")] == [
        "--lora-modules", *(f"{name}={path}" for name, path in adapters.items())]
    assert argv[-2:] == ["--max-loras", "3"]  # never fewer slots than adapters at startup


def test_without_runtime_lora_nothing_is_added(base):
    argv, env = vllm_serve_command(model_path=base, served_name="student", host="h", port=1)
    assert "--enable-lora" not in argv and env == {}


def test_the_api_key_travels_in_the_environment_never_in_the_argv(base):
    argv, env = vllm_serve_command(model_path=base, served_name="student", host="h", port=1, api_key="sk-local")
    assert env == {"VLLM_API_KEY": "sk-local"}
    assert not any("sk-local" in arg for arg in argv)


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"tensor_parallel_size": 0}, "tensor parallel size"),
        ({"max_loras": 0}, "max LoRAs"),
        ({"gpu_memory_utilization": 0}, r"\(0, 1\]"),
        ({"gpu_memory_utilization": 1.5}, r"\(0, 1\]"),
        ({"port": 70000}, "port"),
        ({"max_lora_rank": 48}, "max LoRA rank must be one of"),
        ({"dtype": "fp4"}, "dtype"),
        ({"max_model_len": 0}, "max model length"),
        ({"served_name": "my model"}, "not a usable model name"),
        ({"served_name": "a=b"}, "not a usable model name"),
        ({"served_name": ""}, "not a usable model name"),
    ],
)
def test_it_rejects_settings_vllm_would_refuse(base, changes, message):
    arguments = {"model_path": base, "served_name": "student", "host": "127.0.0.1", "port": 8001, **changes}
    with pytest.raises(VLLMConfigError, match=message):
        vllm_serve_argv(**arguments)


def test_it_rejects_missing_folders_and_misfit_adapters(base, tmp_path):
    with pytest.raises(VLLMConfigError, match="does not exist"):
        vllm_serve_argv(model_path=tmp_path / "nowhere", served_name="s", host="h", port=1)
    with pytest.raises(VLLMConfigError, match="adapter 'tutor': folder .* does not exist"):
        vllm_serve_argv(model_path=base, served_name="s", host="h", port=1, lora_modules={"tutor": tmp_path / "no"})
    (tmp_path / "empty").mkdir()
    with pytest.raises(VLLMConfigError, match="no adapter_config.json"):
        vllm_serve_argv(model_path=base, served_name="s", host="h", port=1, lora_modules={"tutor": tmp_path / "empty"})
    wide = fake_adapter(tmp_path / "wide", rank=128)
    with pytest.raises(VLLMConfigError, match="rank 128, above --max-lora-rank 64"):
        vllm_serve_argv(model_path=base, served_name="s", host="h", port=1, lora_modules={"wide": wide})
    same = fake_adapter(tmp_path / "same")
    with pytest.raises(VLLMConfigError, match="same name as its base"):
        vllm_serve_argv(model_path=base, served_name="s", host="h", port=1, lora_modules={"s": same})


def test_the_offline_engine_reserves_the_smallest_rank_that_fits(tmp_path):
    assert smallest_lora_rank([fake_adapter(tmp_path / "a", rank=8)]) == 8
    assert smallest_lora_rank([fake_adapter(tmp_path / "b", rank=12)]) == 16
    assert smallest_lora_rank([tmp_path / "no-config"]) == 16


def test_vllm_is_unavailable_without_the_package(monkeypatch):
    vllm_available.cache_clear()
    monkeypatch.setattr(vllm_module.importlib.util, "find_spec", lambda name: None)
    try:
        assert vllm_available() is False
    finally:
        vllm_available.cache_clear()


# --- On a GPU machine -------------------------------------------------------------------------


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:  # refused while starting, or an HTTP error status
        return False


@contextlib.contextmanager
def vllm_server(argv: list[str], log_path, env: dict[str, str] | None = None):
    """Run `vllm serve` (``argv`` from the builders) until /health answers; yields the port; stops it after."""
    port = int(argv[argv.index("--port") + 1])
    with log_path.open("w") as log:
        server = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "vllm"), *argv[1:]],
                                  env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.monotonic() + 300
        while not healthy(port):
            assert server.poll() is None, f"vllm serve exited: {log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"vllm serve never became healthy: {log_path.read_text()[-3000:]}"
            time.sleep(1)
        yield port
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)


@pytest.fixture
def tiny_with_adapter(tmp_path):
    from tests.gpu_worker.tiny import build_tiny_adapter, build_tiny_model

    base = build_tiny_model(tmp_path / "tiny")
    return base, build_tiny_adapter(base, tmp_path / "tutor", seed=1)


@pytest.mark.gpu
@pytest.mark.slow
@needs_vllm
def test_vllm_serve_answers_a_chat_request_for_the_base_and_the_adapter(tiny_with_adapter, tmp_path):
    from openai import OpenAI

    base, adapter = tiny_with_adapter
    argv = vllm_serve_argv(model_path=base, served_name="tiny", host="127.0.0.1", port=free_port(),
                           lora_modules={"tutor": adapter}, max_lora_rank=8, gpu_memory_utilization=0.3,
                           max_model_len=512, extra=["--enforce-eager"])
    with vllm_server(argv, tmp_path / "vllm.log") as port:
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        assert {model.id for model in client.models.list()} >= {"tiny", "tutor"}
        for name in ("tiny", "tutor"):
            reply = client.chat.completions.create(
                model=name, messages=[{"role": "user", "content": "hello"}], max_tokens=8, temperature=0)
            assert reply.choices[0].message.content is not None
            assert reply.usage.completion_tokens > 0


@pytest.mark.gpu
@pytest.mark.slow
@needs_vllm
def test_vllm_offline_batch_gives_n_outputs_per_prompt_through_an_adapter(tiny_with_adapter):
    from gpu_worker.engine import GenerationParams
    from gpu_worker.vllm import release_offline_engine, vllm_offline_chat, vllm_offline_generate

    base, adapter = tiny_with_adapter
    params = GenerationParams(max_tokens=8, temperature=0.8, n=2, seed=0)
    try:
        outputs = vllm_offline_generate(base, ["one", "two", "three"], params, lora=("tutor", adapter),
                                        gpu_memory_utilization=0.3)
        assert [len(row) for row in outputs] == [2, 2, 2]
        assert all(out.completion_tokens > 0 and out.prompt_tokens > 0 for row in outputs for out in row)
        chats = vllm_offline_chat(base, [[{"role": "user", "content": "hi"}]], GenerationParams(max_tokens=4),
                                  gpu_memory_utilization=0.3)
        assert len(chats) == 1 and chats[0][0].finish_reason in {"stop", "length"}
    finally:
        release_offline_engine()


@pytest.mark.gpu
@pytest.mark.slow
@needs_vllm
def test_vllm_serve_loads_and_unloads_an_adapter_at_run_time(tiny_with_adapter, tmp_path):
    """The same calls as against Errata's CPU server (tests/gpu_worker/test_server_adapters.py), same answers."""
    from openai import NotFoundError, OpenAI

    from pipeline.models.adapters import AdapterLoadError, load_lora_adapter, unload_lora_adapter
    from pipeline.models.endpoint import EndpointConfig

    base, adapter = tiny_with_adapter
    argv, env = vllm_serve_command(model_path=base, served_name="tiny", host="127.0.0.1", port=free_port(),
                                   runtime_lora=True, max_lora_rank=8, gpu_memory_utilization=0.3,
                                   max_model_len=512, extra=["--enforce-eager"])
    with vllm_server(argv, tmp_path / "vllm.log", env) as port:
        config = EndpointConfig(name="vllm", base_url=f"http://127.0.0.1:{port}/v1", model="tiny")
        client = OpenAI(base_url=config.base_url, api_key="unused", max_retries=0)
        load_lora_adapter(config, name="tutor", path=str(adapter))
        load_lora_adapter(config, name="tutor", path=str(adapter))  # again, same folder: still fine
        cards = {model.id: model for model in client.models.list()}
        assert cards["tutor"].parent == "tiny" and cards["tutor"].root == str(adapter)
        reply = client.chat.completions.create(model="tutor", messages=[{"role": "user", "content": "hi"}],
                                               max_tokens=4, temperature=0)
        assert reply.usage.completion_tokens > 0
        with pytest.raises(AdapterLoadError, match="HTTP 404"):
            load_lora_adapter(config, name="nowhere", path=str(tmp_path / "no-adapter"))
        unload_lora_adapter(config, name="tutor")
        with pytest.raises(AdapterLoadError, match="HTTP 404: .*cannot be found"):
            unload_lora_adapter(config, name="tutor")
        with pytest.raises(NotFoundError):
            client.chat.completions.create(model="tutor", messages=[{"role": "user", "content": "hi"}], max_tokens=2)
