"""`python -m gpu_worker serve`: arguments to model specs or a vLLM argv, checked before loading; a real server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from gpu_worker import cli
from gpu_worker.cli import (
    ServeConfigError,
    build_parser,
    choose_backend,
    main,
    plan_models,
    resolve_specs,
    run_forwarding_signals,
    split_adapter_arg,
    vllm_argv_for,
)

from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def serve_args(*argv: str):
    return build_parser().parse_args(["serve", *argv])


@pytest.fixture
def folders(tmp_path):
    """Two model folders, a GGUF file and two adapter folders that pass the checks (nothing loads them)."""
    for name in ("student", "teacher"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text("{}")
    (tmp_path / "student" / "weights.gguf").write_bytes(b"GGUF")
    for name in ("tutor", "critic"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "adapter_config.json").write_text(json.dumps({"r": 8}))
    return tmp_path


def test_it_plans_models_with_their_adapters(folders):
    args = serve_args("--model", f"student={folders / 'student'}", "--model", f"teacher={folders / 'teacher'}",
                      "--adapter", f"student:tutor={folders / 'tutor'}", "--adapter", f"student:critic={folders / 'critic'}")
    models = plan_models(args)
    assert [(model.name, model.path, model.gguf_file) for model in models] == [
        ("student", folders / "student", None), ("teacher", folders / "teacher", None)]
    assert models[0].adapters == {"tutor": str(folders / "tutor"), "critic": str(folders / "critic")}
    assert models[1].adapters == {}


def test_a_gguf_path_or_gguf_file_names_the_weights_file(folders):
    [model] = plan_models(serve_args("--model", f"student={folders / 'student' / 'weights.gguf'}"))
    assert (model.path, model.gguf_file) == (folders / "student", "weights.gguf")
    [model] = plan_models(serve_args("--model", f"student={folders / 'student'}", "--gguf-file", "weights.gguf"))
    assert (model.path, model.gguf_file) == (folders / "student", "weights.gguf")


def test_smollm2_is_planned_under_its_default_or_given_name(folders):
    assert [model.name for model in plan_models(serve_args("--smollm2"))] == ["smollm2"]
    models = plan_models(serve_args("--model", f"student={folders / 'student'}", "--smollm2", "demo"))
    assert [(model.name, model.path) for model in models] == [("student", folders / "student"), ("demo", None)]


def test_adapter_arguments_split_into_base_name_and_path():
    assert split_adapter_arg("student:tutor=/a/b=c") == ("student", "tutor", "/a/b=c")
    with pytest.raises(ServeConfigError, match="BASE_NAME:ADAPTER_NAME=PATH"):
        split_adapter_arg("tutor=/a")


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "nothing to serve"),
        (["--model", "student"], "expected NAME=PATH"),
        (["--model", "student={d}/nowhere"], "folder .*nowhere does not exist"),
        (["--model", "student={d}/tutor"], "no config.json"),
        (["--model", "student={d}/student", "--gguf-file", "other.gguf"], "GGUF file .*other.gguf does not exist"),
        (["--model", "a={d}/student", "--model", "b={d}/teacher", "--gguf-file", "weights.gguf"], "exactly one --model"),
        (["--model", "student={d}/student", "--model", "student={d}/teacher"], "'student' is used twice"),
        (["--model", "student={d}/student", "--smollm2", "student"], "'student' is used twice"),
        (["--model", "student={d}/student", "--model", "tutor={d}/teacher", "--adapter", "student:tutor={d}/tutor"],
         "'tutor' is used twice"),
        (["--model", "student={d}/student", "--adapter", "student:tutor={d}/tutor", "--adapter", "student:tutor={d}/critic"],
         "given twice"),
        (["--model", "student={d}/student", "--adapter", "teacher:tutor={d}/tutor"], "not served"),
        (["--model", "student={d}/student", "--adapter", "student:tutor={d}/teacher"], "no adapter_config.json"),
        (["--model", "my student={d}/student"], "not a usable model name"),
    ],
)
def test_it_rejects_bad_specs_before_loading_anything(folders, monkeypatch, argv, message):
    monkeypatch.setattr(cli, "resolve_specs", lambda models: pytest.fail("nothing may load before the checks pass"))
    with pytest.raises(ServeConfigError, match=message):
        plan_models(serve_args(*[item.format(d=folders) for item in argv]))


def test_the_command_line_reports_a_bad_spec_in_one_line_and_exits_2(folders, capsys, monkeypatch):
    monkeypatch.setattr(cli, "resolve_specs", lambda models: pytest.fail("nothing may load before the checks pass"))
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--model", f"student={folders / 'missing'}"])
    assert exit_info.value.code == 2
    assert "student" in capsys.readouterr().err


@pytest.mark.parametrize(
    "requested, available, chosen",
    [("auto", True, "vllm"), ("auto", False, "cpu"), ("cpu", True, "cpu"), ("vllm", True, "vllm")],
)
def test_auto_takes_vllm_only_where_it_can_run(requested, available, chosen):
    assert choose_backend(requested, available=available) == chosen


def test_asking_for_vllm_without_it_fails_in_plain_words(folders, capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--backend", "vllm", "--model", f"student={folders / 'student'}"])
    assert "needs vLLM installed" in capsys.readouterr().err


def test_vllm_serves_one_base_model_per_process(folders, monkeypatch, capsys):
    monkeypatch.setattr(cli, "vllm_available", lambda: True)
    with pytest.raises(SystemExit):
        main(["serve", "--model", f"a={folders / 'student'}", "--model", f"b={folders / 'teacher'}"])
    assert "one base model per process" in capsys.readouterr().err


def test_the_vllm_argv_carries_the_serve_settings(folders):
    from gpu_worker.engine import ModelSpec

    args = serve_args("--port", "9001", "--host", "0.0.0.0", "--tensor-parallel-size", "2",
                      "--gpu-memory-utilization", "0.8", "--max-lora-rank", "16")
    spec = ModelSpec(name="student", path=str(folders / "student"), adapters={"tutor": str(folders / "tutor")})
    argv = vllm_argv_for(spec, args)
    assert argv[:3] == ["vllm", "serve", str(folders / "student")]
    pairs = dict(zip(argv[3::2], argv[4::2]))
    assert pairs["--served-model-name"] == "student" and pairs["--port"] == "9001" and pairs["--host"] == "0.0.0.0"
    assert pairs["--tensor-parallel-size"] == "2" and pairs["--gpu-memory-utilization"] == "0.8"
    assert argv[argv.index("--lora-modules") + 1] == f"tutor={folders / 'tutor'}"
    assert argv[argv.index("--max-lora-rank") + 1] == "16"
    gguf = ModelSpec(name="student", path=str(folders / "student"), gguf_file="weights.gguf")
    assert vllm_argv_for(gguf, args)[2] == str(folders / "student" / "weights.gguf")


def test_resolved_specs_are_engine_model_specs(folders):
    from gpu_worker.engine import ModelSpec

    args = serve_args("--model", f"student={folders / 'student'}", "--adapter", f"student:tutor={folders / 'tutor'}")
    assert resolve_specs(plan_models(args)) == [
        ModelSpec(name="student", path=str(folders / "student"), adapters={"tutor": str(folders / "tutor")})]


def test_signals_reach_the_child_process(tmp_path):
    """SIGTERM to `serve` is passed on to vllm, which can then shut down cleanly (here: a stand-in)."""
    marker = tmp_path / "child-got-sigterm"
    child = textwrap.dedent(f"""
        import pathlib, signal, sys, time
        signal.signal(signal.SIGTERM, lambda *_: (pathlib.Path({str(marker)!r}).write_text("yes"), sys.exit(3)))
        pathlib.Path({str(tmp_path / 'child-ready')!r}).write_text("ready")
        time.sleep(60)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", "import sys; from gpu_worker.cli import run_forwarding_signals; "
         f"sys.exit(run_forwarding_signals([sys.executable, '-c', {child!r}]))"],
        cwd=REPO,
    )
    deadline = time.monotonic() + 20
    while not (tmp_path / "child-ready").exists():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.05)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=20) == 3  # the child's own exit status comes back
    assert marker.read_text() == "yes"


def test_run_forwarding_signals_passes_the_exit_status_through():
    assert run_forwarding_signals([sys.executable, "-c", "raise SystemExit(7)"]) == 7


# --- A real server ----------------------------------------------------------------------------


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:  # refused while starting, or an HTTP error status
        return False


@pytest.mark.slow
def test_serve_starts_the_cpu_server_that_answers_the_openai_client(tmp_path):
    from openai import OpenAI

    from tests.gpu_worker.tiny import build_tiny_model

    folder = build_tiny_model(tmp_path / "tiny")
    port = free_port()
    log_path = tmp_path / "serve.log"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "gpu_worker", "serve", "--model", f"tiny={folder}", "--port", str(port),
             "--backend", "cpu"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert server.poll() is None, f"serve exited early:\n{log_path.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"/health never answered:\n{log_path.read_text()[-3000:]}"
            if healthy(port):
                break
            time.sleep(0.2)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        assert [model.id for model in client.models.list()] == ["tiny"]
        reply = client.chat.completions.create(
            model="tiny", messages=[{"role": "user", "content": "hello"}], max_tokens=8, temperature=0)
        assert reply.choices[0].finish_reason in {"stop", "length"}
        assert reply.usage.completion_tokens > 0
        assert isinstance(reply.choices[0].message.content, str)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
