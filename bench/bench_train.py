"""Benchmark: a LoRA run through Errata's training runner vs a plain transformers Trainer script doing the same work.

Errata's side is the task's own path (``run_training``: spec.json, ``python -m gpu_worker.training``, events
read and forwarded, checkpoint, final adapter, manifest), timed from launch to manifest. The plain side is a
minimal Trainer script in its own process: the same model, tokenized examples (prompt masked, reply and
EOS learned), LoRA settings, steps, batch size, seed and threads, timed from launch to its saved adapter.
SmolLM2 when installed, else the tiny test model (said on stderr). The ratio is Errata's time over the
plain script's: what Errata's bookkeeping costs. Best of REPEATS for each side, taken in turns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

REPEATS = 3  # best of: the machine is shared, so the least disturbed run is the fairest figure
STEPS = {"smollm2": 12, "tiny": 600}  # about 30 s of training a run on one core, after 5-10 s of start-up
THREADS = 1

PLAIN_SCRIPT = """
import json, sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments

spec = json.load(open(sys.argv[1]))
config = spec["config"]
torch.set_num_threads(config["torch_threads"])
tokenizer = AutoTokenizer.from_pretrained(spec["base"])
if tokenizer.pad_token_id is None:
    tokenizer.pad_token = tokenizer.eos_token

def tokenize(messages):
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    target = full[len(prompt):]
    if tokenizer.eos_token in target:
        target = target[:target.rindex(tokenizer.eos_token) + len(tokenizer.eos_token)]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    if target_ids[-1] != tokenizer.eos_token_id:
        target_ids.append(tokenizer.eos_token_id)
    return {"input_ids": prompt_ids + target_ids, "labels": [-100] * len(prompt_ids) + target_ids}

def collate(features):
    width = max(len(f["input_ids"]) for f in features)
    pad = lambda values, filler: values + [filler] * (width - len(values))
    return {"input_ids": torch.tensor([pad(f["input_ids"], tokenizer.pad_token_id) for f in features]),
            "attention_mask": torch.tensor([pad([1] * len(f["input_ids"]), 0) for f in features]),
            "labels": torch.tensor([pad(f["labels"], -100) for f in features])}

data = [tokenize(json.loads(line)["messages"]) for line in open(spec["train_file"])]
torch.manual_seed(config["seed"])
model = AutoModelForCausalLM.from_pretrained(spec["base"], dtype=torch.float32)
lora = config["lora"]
model = get_peft_model(model, LoraConfig(r=lora["r"], lora_alpha=lora["alpha"], lora_dropout=lora["dropout"],
                                         target_modules="all-linear", task_type="CAUSAL_LM"))
args = TrainingArguments(output_dir=spec["output_dir"], max_steps=config["max_steps"],
                         per_device_train_batch_size=config["batch_size"], learning_rate=config["learning_rate"],
                         lr_scheduler_type="constant", seed=config["seed"], use_cpu=True, report_to="none",
                         logging_steps=config["log_every"], save_strategy="no", disable_tqdm=True,
                         remove_unused_columns=False)
Trainer(model=model, args=args, train_dataset=data, data_collator=collate).train()
model.save_pretrained(spec["output_dir"] + "/adapter")
"""


def base_model(workdir: Path) -> tuple[str, str]:
    """(name, folder): SmolLM2 converted once (before any timing), else a freshly built tiny model."""
    from gpu_worker.smollm2 import SmolLM2Missing, resolve_weights

    try:
        return "smollm2", resolve_weights("packaged:smollm2")
    except SmolLM2Missing as error:
        print(f"# {error}; benchmarking the tiny test model instead", file=sys.stderr)
    from tests.gpu_worker.tiny import build_tiny_model

    return "tiny", str(build_tiny_model(workdir / "tiny"))


def training_rows(count: int = 32) -> list[dict]:
    topics = ["rivers", "volcanoes", "fractions", "tides", "comets", "bridges", "glaciers", "magnets"]
    return [{"messages": [{"role": "user", "content": f"In one sentence, what should a student know about "
                                                      f"{topics[i % len(topics)]}? (card {i})"},
                          {"role": "assistant", "content": f"Card {i}: {topics[i % len(topics)]} follow simple "
                                                           "rules that can be observed and measured."}],
             "part": "main", "source": {"index": i}} for i in range(count)]


def write_specs(workdir: Path, name: str, base: str, round_number: int) -> tuple[dict, Path]:
    from pipeline.training.config import preset_config

    train_file = workdir / "train.jsonl"
    if not train_file.exists():
        train_file.write_text("".join(json.dumps(row) + "\n" for row in training_rows()))
    steps = STEPS[name]
    config = preset_config("cpu-lora-smollm2", base, max_steps=steps, save_every=steps, log_every=10,
                           batch_size=4, max_length=256, torch_threads=THREADS, lora={"dropout": 0.0})
    errata = {"run_id": f"bench-{round_number}", "config": config.to_dict(), "train_file": str(train_file),
              "eval_file": None, "output_dir": str(workdir / f"errata-{round_number}"), "reply_to": None}
    plain_path = workdir / f"plain-{round_number}.json"
    plain_path.write_text(json.dumps({"base": base, "config": config.to_dict(), "train_file": str(train_file),
                                      "output_dir": str(workdir / f"plain-{round_number}")}))
    return errata, plain_path


def time_errata(spec: dict) -> float:
    from gpu_worker.training.spec import parse_train_spec
    from gpu_worker.training.task import run_training

    started = time.perf_counter()
    done = run_training(parse_train_spec(spec))
    elapsed = time.perf_counter() - started
    if done["status"] != "succeeded":
        raise SystemExit(f"Errata's run failed: {done['error']}")
    return elapsed


def time_plain(spec_path: Path, workdir: Path) -> float:
    script = workdir / "plain_trainer.py"
    script.write_text(PLAIN_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS), HF_HUB_OFFLINE="1")
    started = time.perf_counter()
    finished = subprocess.run([sys.executable, str(script), str(spec_path)], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    elapsed = time.perf_counter() - started
    if finished.returncode != 0:
        raise SystemExit(f"the plain Trainer script failed:\n{finished.stderr[-3000:]}")
    return elapsed


def main() -> None:
    import logging

    logging.basicConfig(level=logging.WARNING)  # run_training logs every runner line at INFO
    with tempfile.TemporaryDirectory(prefix="errata-bench-train-") as folder:
        workdir = Path(folder)
        name, base = base_model(workdir)
        errata_times, plain_times = [], []
        for round_number in range(REPEATS):
            errata_spec, plain_spec = write_specs(workdir, name, base, round_number)
            # In turns, each side first every other round: neither always runs on the warmer machine.
            timings = [lambda: errata_times.append(time_errata(errata_spec)),
                       lambda: plain_times.append(time_plain(plain_spec, workdir))]
            for timed in timings[::1 if round_number % 2 else -1]:
                timed()
    errata_s, plain_s = min(errata_times), min(plain_times)
    print(f"# {name}, {STEPS[name]} LoRA steps, {THREADS} thread: Errata's runner {errata_s:.1f} s "
          f"(runs {', '.join(f'{t:.1f}' for t in errata_times)}), plain Trainer script {plain_s:.1f} s "
          f"(runs {', '.join(f'{t:.1f}' for t in plain_times)}), launch to saved adapter", file=sys.stderr)
    print(f"BENCH train_overhead_ratio {errata_s / plain_s:.3f} ratio goal=1.05")


if __name__ == "__main__":
    main()
