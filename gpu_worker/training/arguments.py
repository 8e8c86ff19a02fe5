"""TrainingArguments for a run, as a plain dict built from its config (pure: tested without a GPU or a model)."""

from __future__ import annotations

from typing import Any

from gpu_worker.training.spec import TrainSpec
from pipeline.training.config import TrainConfig
from pipeline.training.launch import deepspeed_config, resolved_precision

SCHEDULES = {"constant": "constant", "linear": "linear", "cosine": "cosine"}
KEEP_CHECKPOINTS = 2  # the newest to resume from, and the one before in case the newest is being written


def training_arguments_kwargs(config: TrainConfig, spec: TrainSpec, *, cuda: bool = False,
                              bf16_supported: bool = True) -> dict[str, Any]:
    """Keyword arguments for ``transformers.TrainingArguments`` (and trl's DPOConfig, which extends it).

    ``cuda``: whether the run will use CUDA (the runner decides from ``config.device`` and the machine).
    Every value the Trainer or trl would otherwise default differently is set here: trl turns gradient
    checkpointing and bf16 on by default, the Trainer logs to every installed tracker.
    """
    precision = resolved_precision(config, cuda=cuda, bf16_supported=bf16_supported)
    has_eval = spec.eval_file is not None
    periodic_eval = has_eval and config.eval_every > 0
    kwargs: dict[str, Any] = {
        "output_dir": str(spec.folder.checkpoints),
        "per_device_train_batch_size": config.batch_size,
        "per_device_eval_batch_size": config.batch_size,
        "gradient_accumulation_steps": config.grad_accumulation,
        "learning_rate": config.learning_rate,
        **_schedule(config),
        **_length(config),
        "seed": config.seed,
        "data_seed": config.seed,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": not cuda,
        "logging_strategy": "steps",
        "logging_steps": config.log_every,
        "logging_first_step": True,  # a first loss at once: the live chart starts with the run
        "save_strategy": "steps",
        "save_steps": config.save_every,
        "save_total_limit": KEEP_CHECKPOINTS,
        "eval_strategy": "steps" if periodic_eval else "no",
        "eval_steps": config.eval_every if periodic_eval else None,
        "report_to": "none",
        "disable_tqdm": True,
        "remove_unused_columns": False,  # the collator builds the batches; nothing to drop
        "include_num_input_tokens_seen": "non_padding",  # the count tokens_per_s is measured from
        "gradient_checkpointing": config.method == "qlora",  # 4-bit runs are the memory-bound ones
        "gradient_checkpointing_kwargs": {"use_reentrant": False} if config.method == "qlora" else None,
        "dataloader_num_workers": 0,
        "deepspeed": deepspeed_config(config),
        # Every trainable parameter of a causal LM gets a gradient each step; the search for unused ones only
        # costs time, and breaks with gradient checkpointing.
        "ddp_find_unused_parameters": False if config.devices > 1 else None,
    }
    if config.objective == "sft":
        kwargs["label_names"] = ["labels"]  # a PEFT-wrapped model hides them from the Trainer's signature check
    return kwargs


def _schedule(config: TrainConfig) -> dict[str, Any]:
    schedule = SCHEDULES[config.lr_scheduler]
    if schedule == "constant" and config.warmup_ratio > 0:
        schedule = "constant_with_warmup"
    # warmup_steps below 1 is a fraction of the total steps (TrainingArguments.get_warmup_steps)
    return {"lr_scheduler_type": schedule, "warmup_steps": config.warmup_ratio}


def _length(config: TrainConfig) -> dict[str, Any]:
    if config.max_steps > 0:
        return {"max_steps": config.max_steps, "num_train_epochs": config.epochs}
    return {"max_steps": -1, "num_train_epochs": config.epochs}
