"""Build a run's Trainer: the training data, the tokenizer, the model (full, LoRA or 4-bit QLoRA), and the trainer
(transformers' for SFT, trl's DPOTrainer for preference pairs), all with the progress callback attached."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import PrinterCallback

from gpu_worker.smollm2 import SmolLM2Missing, resolve_weights
from gpu_worker.training.arguments import training_arguments_kwargs
from gpu_worker.training.layout import checkpoint_step
from gpu_worker.training.spec import TrainingError, TrainSpec
from gpu_worker.training.trainer import PaddingCollator, ProgressCallback, SequenceDataset, WeightedLossTrainer
from pipeline.training.config import TrainConfig
from pipeline.training.data import PreferencePair, TrainingDataError, TrainingExample, read_jsonl
from pipeline.training.launch import PRECISION_DTYPES, bitsandbytes_config, peft_lora_config, resolved_precision
from pipeline.training.tokens import plain_prompt, tokenize_example, tokenize_examples

logger = logging.getLogger("gpu_worker.training")


@dataclass
class Session:
    """Everything a run holds while it trains."""

    trainer: Any
    callback: ProgressCallback
    tokenizer: Any
    base_model: Path
    precision: str
    resume_from: Path | None
    counts: dict = field(default_factory=dict)  # examples, truncated, dropped
    warnings: list[str] = field(default_factory=list)


def build_session(spec: TrainSpec) -> Session:
    config = spec.config
    cuda = config.device != "cpu" and torch.cuda.is_available()
    bf16_supported = cuda and torch.cuda.is_bf16_supported()
    precision = resolved_precision(config, cuda=cuda, bf16_supported=bf16_supported)
    kwargs = training_arguments_kwargs(config, spec, cuda=cuda, bf16_supported=bf16_supported)
    # Arguments before the model: with ZeRO-3 in them, from_pretrained shards the weights while loading.
    args = _training_arguments(config, kwargs)
    base = base_model_folder(config.base_model)
    tokenizer = load_tokenizer(base)
    resume_from = spec.folder.newest_checkpoint()
    build = _build_dpo if config.objective == "dpo" else _build_sft
    trainer, counts = build(spec, args, tokenizer, base, precision=precision, bf16_supported=bf16_supported)
    callback = ProgressCallback(spec.folder, examples=counts["examples"],
                                resumed_from=None if resume_from is None else checkpoint_step(resume_from))
    trainer.add_callback(callback)
    trainer.remove_callback(PrinterCallback)  # it prints every log dict to stdout, where the events go
    return Session(trainer, callback, tokenizer, base, precision, resume_from, counts, _data_warnings(counts, config))


def _training_arguments(config: TrainConfig, kwargs: dict):
    if config.objective == "dpo":
        from trl import DPOConfig

        return DPOConfig(**kwargs, beta=config.dpo_beta, max_length=config.max_length)
    from transformers import TrainingArguments

    return TrainingArguments(**kwargs)


def base_model_folder(base_model: str) -> Path:
    try:
        folder = Path(resolve_weights(base_model))
    except SmolLM2Missing as error:
        raise TrainingError(f"base model {base_model}: {error}") from None
    if not (folder / "config.json").is_file():
        raise TrainingError(f"base model {base_model}: {folder} is not a Hugging Face model folder (no config.json)")
    return folder


def load_tokenizer(base: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(config: TrainConfig, base: Path, *, precision: str, bf16_supported: bool):
    """The base model for training: 4-bit on this process's GPU for QLoRA, else in the dtype training wants."""
    from transformers import AutoModelForCausalLM

    started = time.monotonic()
    kwargs: dict[str, Any] = {"dtype": _load_dtype(config, precision)}
    if config.method == "qlora":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(**bitsandbytes_config(config, bf16_supported=bf16_supported))
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    model.config.use_cache = False  # no generation while training; the cache only costs memory
    if config.method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=True,
                                                gradient_checkpointing_kwargs={"use_reentrant": False})
    logger.info("loaded %s (%s, %s, %s) in %.1fs", base, config.method, precision, kwargs["dtype"],
                time.monotonic() - started)
    return model


def _load_dtype(config: TrainConfig, precision: str) -> torch.dtype:
    """Adapters train on frozen half-precision weights; a full fine-tune keeps fp32 master weights (mixed precision)."""
    if config.method != "full" and precision in ("bf16", "fp16"):
        return getattr(torch, PRECISION_DTYPES[precision])
    return torch.float32


def lora_config(config: TrainConfig):
    from peft import LoraConfig

    settings = peft_lora_config(config)
    return None if settings is None else LoraConfig(**settings)


# --- SFT ---------------------------------------------------------------------------------------------


def _build_sft(spec: TrainSpec, args, tokenizer, base: Path, *, precision: str, bf16_supported: bool):
    from transformers import Trainer, set_seed

    config = spec.config
    train, counts = _sft_dataset(spec.train_file, "train_file", tokenizer, config)
    evaluation = _sft_dataset(spec.eval_file, "eval_file", tokenizer, config)[0] if spec.eval_file else None
    set_seed(config.seed)  # LoRA's initial weights are drawn in get_peft_model
    model = load_model(config, base, precision=precision, bf16_supported=bf16_supported)
    peft_config = lora_config(config)
    if peft_config is not None:
        from peft import get_peft_model

        model = get_peft_model(model, peft_config)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    logger.info("training %d of %d parameters", trainable, sum(p.numel() for p in model.parameters()))
    trainer_class = WeightedLossTrainer if config.loss_weights else Trainer
    trainer = trainer_class(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                            data_collator=PaddingCollator(tokenizer.pad_token_id, weighted=bool(config.loss_weights)),
                            processing_class=tokenizer)
    return trainer, counts


def _sft_dataset(path: Path, name: str, tokenizer, config: TrainConfig) -> tuple[SequenceDataset, dict]:
    rows = read_examples(path, name, TrainingExample)
    kept, counts = tokenize_examples(rows, tokenizer, config.max_length)
    logger.info("%s: %d examples, %d truncated to %d tokens, %d left out", name, counts["examples"],
                counts["truncated"], config.max_length, counts["dropped"])
    if not kept:
        raise TrainingError(f"{name} {path}: every example lost its whole reply to max_length {config.max_length}; "
                            "raise max_length")
    weights = [config.loss_weights.get(row["part"], 1.0) for row, _ in kept] if config.loss_weights else [1.0] * len(kept)
    return SequenceDataset([sequence for _, sequence in kept], weights), counts


def read_examples(path: Path, name: str, kind: type) -> list:
    """The records of a training file, all of ``kind``; unreadable, empty or mixed files are TrainingErrors."""
    try:
        records = read_jsonl(path)
    except (OSError, TrainingDataError) as error:
        raise TrainingError(f"{name}: {error}") from None
    if not records:
        raise TrainingError(f"{name} {path} holds no examples")
    if not isinstance(records[0], kind):
        wanted = "preference pairs {prompt, chosen, rejected}" if kind is PreferencePair else "chat examples {messages}"
        raise TrainingError(f"{name} {path}: this run's objective trains on {wanted}, and the file holds something else")
    return records


def _data_warnings(counts: dict, config: TrainConfig) -> list[str]:
    warnings = []
    if counts.get("truncated"):
        warnings.append(f"{counts['truncated']} of {counts['examples']} training examples are longer than "
                        f"max_length {config.max_length} tokens and were cut from the right")
    if counts.get("dropped"):
        warnings.append(f"{counts['dropped']} training examples were left out: nothing of their reply fits "
                        f"in max_length {config.max_length}")
    return warnings


# --- DPO ---------------------------------------------------------------------------------------------


def _build_dpo(spec: TrainSpec, args, tokenizer, base: Path, *, precision: str, bf16_supported: bool):
    from trl import DPOTrainer

    config = spec.config
    train, counts = _preference_dataset(spec.train_file, "train_file", tokenizer, config)
    evaluation = _preference_dataset(spec.eval_file, "eval_file", tokenizer, config)[0] if spec.eval_file else None
    model = load_model(config, base, precision=precision, bf16_supported=bf16_supported)
    # trl wraps the model in the adapter itself and uses the adapter-free model as the reference.
    trainer = DPOTrainer(model=model, args=args, train_dataset=train, eval_dataset=evaluation,
                         processing_class=tokenizer, peft_config=lora_config(config))
    return trainer, counts


def _preference_dataset(path: Path, name: str, tokenizer, config: TrainConfig):
    """trl's conversational format where the tokenizer has a chat template (rendered as in SFT and serving);
    otherwise the plain layout's prompt text, so the prompt reads as Errata's server writes it."""
    from datasets import Dataset

    pairs = read_examples(path, name, PreferencePair)
    rows, truncated = [], 0
    for pair in pairs:
        user = {"role": "user", "content": pair.prompt}
        truncated += tokenize_example([user, {"role": "assistant", "content": pair.chosen}], tokenizer,
                                      config.max_length).truncated
        if tokenizer.chat_template:
            rows.append({"prompt": [user], "chosen": [{"role": "assistant", "content": pair.chosen}],
                         "rejected": [{"role": "assistant", "content": pair.rejected}]})
        else:
            rows.append({"prompt": plain_prompt([user]), "chosen": pair.chosen, "rejected": pair.rejected})
    return Dataset.from_list(rows), {"examples": len(rows), "truncated": truncated, "dropped": 0}


# --- after training ----------------------------------------------------------------------------------


def merge_adapter(session: Session, adapter: Path, out: Path) -> Path:
    """The adapter folded into a fresh copy of the base weights (in the run's precision), saved as a model folder.

    A fresh copy, not the trained one: a QLoRA base is 4-bit and cannot hold merged weights exactly.
    """
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    dtype = getattr(torch, PRECISION_DTYPES[session.precision])
    base = AutoModelForCausalLM.from_pretrained(session.base_model, dtype=dtype)
    merged = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    merged.save_pretrained(out)
    session.tokenizer.save_pretrained(out)
    return out
