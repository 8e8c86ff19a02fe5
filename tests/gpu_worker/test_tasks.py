"""The gpu queue: spec checking, the batch task on the tiny model, and a real Celery worker end to end."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import time
from pathlib import Path

import pytest

from gpu_worker import tasks
from gpu_worker.celery_app import make_app
from gpu_worker.tasks import BatchSpecError, ReplyTo, generate_batch, parse_batch_spec, ping
from tests.conftest import start_gpu_worker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.gpu_worker.tiny import build_tiny_adapter, build_tiny_model

    root = tmp_path_factory.mktemp("models")
    base = build_tiny_model(root / "tiny")
    return {"base": base, "adapter": build_tiny_adapter(base, root / "tutor", seed=1)}


@pytest.fixture
def model(tiny):
    return {"name": "tiny", "path": str(tiny["base"]), "adapters": {"tutor": str(tiny["adapter"])}}


@pytest.fixture(autouse=True)
def close_cached_engines():
    yield
    while tasks._engines:
        tasks._engines.popitem()[1].close()


@pytest.fixture
def sent(monkeypatch):
    """Messages the task hands to the broker, as (task name, args, queue)."""
    messages = []
    monkeypatch.setattr(tasks.app, "send_task", lambda name, args, queue: messages.append((name, args, queue)))
    return messages


# --- Spec checking --------------------------------------------------------------------------


def test_a_good_spec_comes_back_typed(model):
    spec = {
        "model": model, "adapter": "tutor",
        "messages": [[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]],
        "params": {"max_tokens": 4, "temperature": 0.5, "stop": "\n", "seed": 3, "n": 2},
        "reply_to": {"task": "runs.tasks.batch_done", "context": {"run_id": 7}},
    }
    batch = parse_batch_spec(spec)
    assert batch.served_name == "tutor"
    assert batch.prompts is None and batch.conversations[0][1] == {"role": "user", "content": "2+2?"}
    assert batch.params == {"max_tokens": 4, "temperature": 0.5, "stop": ("\n",), "seed": 3, "n": 2}
    assert batch.reply_to == ReplyTo(task="runs.tasks.batch_done", queue="default", context={"run_id": 7})


BAD_SPECS = [
    # (what changes in a good spec, the field the error must name)
    ({"model": None}, "spec.model:"),
    ({"model": {"name": "tiny"}}, "spec.model.path:"),
    ({"model": {"name": "", "path": "{base}"}}, "spec.model.name:"),
    ({"model": {"name": "tiny", "path": "/nowhere"}}, "spec.model.path:"),
    ({"model": {"name": "tiny", "path": "{base}", "gguf_file": "missing.gguf"}}, "spec.model.gguf_file:"),
    ({"model": {"name": "tiny", "path": "{base}", "adapters": {"tutor": "{base}"}}}, "spec.model.adapters.tutor:"),
    ({"model": {"name": "tiny", "path": "{base}", "revision": "main"}}, "spec.model.revision: unknown field"),
    ({"adapter": "critic"}, "spec.adapter:"),
    ({"messages": [[{"role": "user", "content": "hi"}]]}, "spec.prompts / spec.messages:"),
    ({"prompts": None}, "spec.prompts / spec.messages:"),
    ({"prompts": []}, "spec.prompts:"),
    ({"prompts": ["ok", 3]}, r"spec.prompts\[1\]:"),
    ({"prompts": None, "messages": [[{"role": "robot", "content": "hi"}]]}, r"spec.messages\[0\]\[0\].role:"),
    ({"prompts": None, "messages": [[{"role": "user"}]]}, r"spec.messages\[0\]\[0\].content:"),
    ({"prompts": None, "messages": [[]]}, r"spec.messages\[0\]:"),
    ({"params": {"n": 0}}, "spec.params.n:"),
    ({"params": {"n": True}}, "spec.params.n:"),
    ({"params": {"max_tokens": 2.5}}, "spec.params.max_tokens:"),
    ({"params": {"temperature": -1}}, "spec.params.temperature:"),
    ({"params": {"top_p": 0}}, "spec.params.top_p:"),
    ({"params": {"stop": [""]}}, "spec.params.stop:"),
    ({"params": {"beam_width": 4}}, "spec.params.beam_width: unknown field"),
    ({"reply_to": {"queue": "default"}}, "spec.reply_to.task:"),
    ({"reply_to": {"task": "t", "context": [1]}}, "spec.reply_to.context:"),
    ({"priority": 9}, "spec.priority: unknown field"),
]


@pytest.mark.parametrize("changes, field_named", BAD_SPECS)
def test_a_bad_spec_is_refused_naming_the_field(tiny, changes, field_named):
    spec = {"model": {"name": "tiny", "path": str(tiny["base"])}, "prompts": ["hello"]}
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(value.get("path"), str):
            value = {**value, "path": value["path"].format(base=tiny["base"])}
        if isinstance(value, dict) and "adapters" in value:
            value["adapters"] = {name: path.format(base=tiny["base"]) for name, path in value["adapters"].items()}
        spec[key] = value
    with pytest.raises(BatchSpecError, match=f"^{field_named}"):
        parse_batch_spec(spec)
    assert issubclass(BatchSpecError, ValueError)


def test_a_spec_that_is_not_an_object_is_refused():
    with pytest.raises(BatchSpecError, match="^spec: expected a JSON object"):
        parse_batch_spec(["model", "prompts"])


# --- The task, called directly --------------------------------------------------------------


def test_generate_batch_gives_n_json_outputs_per_prompt(model, sent):
    result = generate_batch.run({"model": model, "prompts": ["one", "two", "three"],
                                 "params": {"max_tokens": 5, "temperature": 0.9, "seed": 1, "n": 2}})
    assert result["model"] == "tiny" and result["seconds"] >= 0
    assert [len(row) for row in result["outputs"]] == [2, 2, 2]
    for output in (output for row in result["outputs"] for output in row):
        assert set(output) == {"text", "finish_reason", "prompt_tokens", "completion_tokens"}
        assert isinstance(output["text"], str) and output["finish_reason"] in {"stop", "length"}
        assert output["prompt_tokens"] > 0 and 0 < output["completion_tokens"] <= 5
    assert sent == []  # no reply_to, no message


def test_chat_messages_go_through_the_chat_template_and_the_adapter_changes_the_answer(model, sent):
    conversation = [{"role": "user", "content": "Say something."}]
    base = generate_batch.run({"model": model, "messages": [conversation], "params": {"max_tokens": 12}})
    tutor = generate_batch.run({"model": model, "adapter": "tutor", "messages": [conversation],
                                "params": {"max_tokens": 12}})
    assert tutor["model"] == "tutor"
    # "<|user|>Say something.\n<|assistant|>" is 36 bytes: the byte tokenizer counts the rendered template
    assert base["outputs"][0][0]["prompt_tokens"] >= len("<|user|>Say something.\n<|assistant|>")
    assert base["outputs"][0][0]["text"] != tutor["outputs"][0][0]["text"]


def test_the_result_goes_back_to_the_web_side_task_named_in_reply_to(model, sent):
    reply_to = {"task": "runs.tasks.batch_done", "queue": "default", "context": {"run_id": 7, "chunk": 2}}
    result = generate_batch.run({"model": model, "prompts": ["hi"], "params": {"max_tokens": 2},
                                 "reply_to": reply_to})
    assert sent == [("runs.tasks.batch_done", [result, {"run_id": 7, "chunk": 2}], "default")]


def test_a_failed_batch_tells_reply_to_why_and_still_fails(model, sent):
    spec = {"model": model, "prompts": ["hi"], "params": {"n": 0},
            "reply_to": {"task": "runs.tasks.batch_done", "context": {"run_id": 7}}}
    with pytest.raises(BatchSpecError, match="spec.params.n"):
        generate_batch.run(spec)
    [(name, [failure, context], queue_name)] = sent
    assert (name, context, queue_name) == ("runs.tasks.batch_done", {"run_id": 7}, "default")
    assert failure["outputs"] is None and failure["model"] == "tiny"
    assert failure["error"].startswith("BatchSpecError: spec.params.n")


def test_on_a_gpu_machine_the_batch_goes_to_vllms_offline_engine(model, monkeypatch, sent):
    """The routing only (vLLM itself runs in test_vllm.py on a GPU machine)."""
    from gpu_worker import vllm as vllm_module
    from gpu_worker.engine import Generated

    calls = []

    def fake_offline(kind):
        def generate(model_path, inputs, params, lora, **options):
            calls.append((kind, model_path, list(inputs), params.n, lora, options))
            return [[Generated("ok", "stop", 3, 1)] * params.n for _ in inputs]
        return generate

    monkeypatch.setattr(tasks, "vllm_available", lambda: True)
    monkeypatch.setattr(vllm_module, "vllm_offline_generate", fake_offline("generate"))
    monkeypatch.setattr(vllm_module, "vllm_offline_chat", fake_offline("chat"))
    monkeypatch.setenv("ERRATA_VLLM_TENSOR_PARALLEL_SIZE", "2")
    result = generate_batch.run({"model": model, "adapter": "tutor", "prompts": ["a", "b"], "params": {"n": 2}})
    assert result["outputs"][1] == [{"text": "ok", "finish_reason": "stop", "prompt_tokens": 3, "completion_tokens": 1}] * 2
    conversation = [{"role": "user", "content": "hi"}]
    generate_batch.run({"model": model, "messages": [conversation]})
    [(kind, path, inputs, n, lora, options), (chat_kind, _, chats, _, chat_lora, _)] = calls
    assert (kind, path, inputs, n, lora) == ("generate", Path(model["path"]), ["a", "b"], 2, ("tutor", model["adapters"]["tutor"]))
    assert options == {"tensor_parallel_size": 2, "gpu_memory_utilization": 0.9,
                       "adapter_folders": [model["adapters"]["tutor"]]}
    assert (chat_kind, chats, chat_lora) == ("chat", [tuple(conversation)], None)
    assert tasks._engines == {}  # nothing loaded on the CPU side


def test_the_loaded_engine_is_kept_for_the_next_batch_on_the_same_model(model):
    first = tasks.cpu_engine(model)
    assert tasks.cpu_engine(dict(model)) is first
    assert tasks.cpu_engine({**model, "adapters": {}}) is not first


def test_ping_says_who_listens(sent):
    answer = ping.run({"reply_to": {"task": "health.pong", "queue": "default"}})
    assert answer["pong"] is True and answer["backend"] == "cpu" and answer["pid"] == os.getpid()
    assert sent == [("health.pong", [answer, {}], "default")]


# --- A real worker ----------------------------------------------------------------------------


def read_replies(client, queue_name: str, count: int, *, timeout: float, log_path: Path) -> list[tuple[str, list]]:
    """(task name, args) of the next ``count`` task messages on ``queue_name``, as a web worker would get them."""
    replies = []
    deadline = time.monotonic() + timeout
    with client.connection_for_read() as connection:
        inbox = connection.SimpleQueue(queue_name)
        try:
            while len(replies) < count:
                assert time.monotonic() < deadline, f"{len(replies)}/{count} replies; worker log:\n{log_path.read_text()[-4000:]}"
                try:
                    message = inbox.get(timeout=1)
                except queue.Empty:
                    continue
                args, _kwargs, _embed = message.decode()
                replies.append((message.headers["task"], args))
                message.ack()
        finally:
            inbox.close()
    return replies


@pytest.mark.slow
def test_a_real_worker_on_the_gpu_queue_answers_through_reply_to(tmp_path, model):
    data_dir = tmp_path / "data"
    client = make_app({"ERRATA_DATA_DIR": str(data_dir)})  # the web side's view of the same local broker
    log_path = tmp_path / "gpu-worker.log"
    worker = start_gpu_worker(log_path, REDIS_URL=None, ERRATA_DATA_DIR=str(data_dir), OMP_NUM_THREADS="1",
                              HF_HUB_OFFLINE="1")
    try:
        reply_to = {"task": "errata_tests.reply", "queue": "test-replies"}
        client.send_task("gpu_worker.ping", args=[{"reply_to": {**reply_to, "context": {"asked": "ping"}}}], queue="gpu")
        spec = {"model": model, "prompts": ["hello", "bye"], "params": {"max_tokens": 3, "n": 2},
                "reply_to": {**reply_to, "context": {"asked": "batch", "run_id": 7}}}
        client.send_task("gpu_worker.generate_batch", args=[spec], queue="gpu")

        replies = read_replies(client, "test-replies", 2, timeout=120, log_path=log_path)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    by_context = {args[1]["asked"]: (name, args) for name, args in replies}
    name, (pong, context) = by_context["ping"]
    assert name == "errata_tests.reply" and pong["pong"] is True and pong["pid"] == worker.pid
    name, (result, context) = by_context["batch"]
    assert name == "errata_tests.reply" and context == {"asked": "batch", "run_id": 7}
    assert result["model"] == "tiny" and [len(row) for row in result["outputs"]] == [2, 2]
