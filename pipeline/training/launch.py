"""How a training run is started, as plain data: the launcher argv, the DeepSpeed config, the peft and
bitsandbytes settings. Builds them and never runs anything, so every piece is testable on CPU.

Launcher flags were checked against the launchers' own argument parsers:
- torchrun: torch/distributed/run.py (torch 2.13) -- ``--nproc-per-node``/``--nproc_per_node``,
  ``--master-port``/``--master_port``, ``-m``/``--module`` (the script is a module) and ``--no-python``;
- deepspeed: deepspeed/launcher/runner.py (deepspeedai/DeepSpeed) -- ``--num_gpus``, ``--master_port``,
  ``--module``, and ``--no_local_rank`` (else it appends ``--local_rank=N`` to the module's arguments);
- accelerate: accelerate/commands/launch.py (accelerate 1.15) -- ``--num_processes``, ``--num_machines``,
  ``--main_process_port``, ``--multi_gpu`` or ``--use_deepspeed`` (one of them, not both),
  ``--deepspeed_config_file`` and ``-m``/``--module``. With a DeepSpeed config file accelerate refuses
  ``--mixed_precision``/``--zero_stage``/``--gradient_accumulation_steps`` from its own config, so the
  file alone carries them.
"""

from __future__ import annotations

import sys
from typing import Any

from pipeline.training.config import ALL_LINEAR, TrainConfig

DEFAULT_MASTER_PORT = 29500  # torch.distributed's, DeepSpeed's and accelerate's default
PRECISION_DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def launcher_argv(
    config: TrainConfig,
    *,
    module: str = "gpu_worker.training",
    args: list[str],
    python: str = sys.executable,
    master_port: int | None = None,
    deepspeed_config_file: str | None = None,
) -> list[str]:
    """The command that starts ``python -m module *args`` in ``config.devices`` processes, as an argv list.

    One device and no DeepSpeed: plain ``python -m``. Otherwise the configured launcher, even for one
    process, since DeepSpeed needs the RANK/WORLD_SIZE/MASTER_* environment a launcher sets up. accelerate
    with a ZeRO stage needs ``deepspeed_config_file``: ``deepspeed_config(config)`` written as JSON.
    """
    tail = [module, *map(str, args)]
    if config.devices == 1 and config.deepspeed_stage == 0:
        return [str(python), "-m", *tail]
    processes, port = str(config.devices), str(master_port or DEFAULT_MASTER_PORT)
    if config.launcher == "deepspeed":
        return ["deepspeed", "--num_gpus", processes, "--master_port", port, "--no_local_rank", "--module", *tail]
    if config.launcher == "accelerate":
        return [str(python), "-m", "accelerate.commands.launch", *_accelerate_mode(config, deepspeed_config_file),
                "--num_processes", processes, "--num_machines", "1", "--main_process_port", port, "-m", *tail]
    return [str(python), "-m", "torch.distributed.run", "--nproc_per_node", processes, "--master_port", port,
            "-m", *tail]


def _accelerate_mode(config: TrainConfig, deepspeed_config_file: str | None) -> list[str]:
    if config.deepspeed_stage == 0:
        return ["--multi_gpu"]
    if not deepspeed_config_file:
        raise ValueError(f"accelerate with deepspeed_stage {config.deepspeed_stage} needs deepspeed_config_file: "
                         "write deepspeed_config(config) to a JSON file and pass its path")
    return ["--use_deepspeed", "--deepspeed_config_file", str(deepspeed_config_file)]


def deepspeed_config(config: TrainConfig) -> dict[str, Any] | None:
    """The DeepSpeed config for the HF Trainer (``TrainingArguments(deepspeed=...)``); None without a ZeRO stage.

    "auto" is left wherever the Trainer fills the value from its own arguments (batch sizes, accumulation,
    clipping, bucket sizes), so the two cannot disagree. Precision is explicit when the config names one,
    and "auto" (the Trainer's bf16/fp16 flags decide) when it says auto.
    """
    if config.deepspeed_stage == 0:
        return None
    zero: dict[str, Any] = {"stage": config.deepspeed_stage, "overlap_comm": True, "contiguous_gradients": True,
                            "reduce_bucket_size": "auto"}
    if config.deepspeed_stage == 3:
        zero.update({"stage3_prefetch_bucket_size": "auto", "stage3_param_persistence_threshold": "auto",
                     "stage3_gather_16bit_weights_on_model_save": True})  # save_model writes whole weights
    result: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto", "train_batch_size": "auto",
        "gradient_clipping": "auto", **_precision_sections(config.precision), "zero_optimization": zero,
    }
    if config.offload:
        cpu = {"device": "cpu", "pin_memory": True}
        zero["offload_optimizer"] = dict(cpu)
        if config.deepspeed_stage == 3:
            zero["offload_param"] = dict(cpu)
        # ZeRO-Offload steps the optimizer on the CPU with DeepSpeed's own CPU Adam, so it is named here;
        # the Trainer fills its "auto" values from TrainingArguments.
        result["optimizer"] = {"type": "AdamW", "params": {"lr": "auto", "betas": "auto", "eps": "auto",
                                                           "weight_decay": "auto"}}
    return result


def _precision_sections(precision: str) -> dict[str, Any]:
    if precision == "auto":
        return {"bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"}}
    return {"bf16": {"enabled": precision == "bf16"}, "fp16": {"enabled": precision == "fp16"}}


def resolved_precision(config: TrainConfig, *, cuda: bool, bf16_supported: bool) -> str:
    """The precision a run uses: the config's, or for auto bf16 where the GPU has it, fp16 on older GPUs,
    fp32 on CPU."""
    if config.precision != "auto":
        return config.precision
    if not cuda:
        return "fp32"
    return "bf16" if bf16_supported else "fp16"


def bitsandbytes_config(config: TrainConfig, *, bf16_supported: bool = True) -> dict[str, Any] | None:
    """``transformers.BitsAndBytesConfig`` keyword arguments for QLoRA (4-bit NF4, double quantisation); None otherwise.

    The compute dtype is a name ("bfloat16"), which BitsAndBytesConfig accepts, so this stays plain data.
    """
    if config.method != "qlora":
        return None
    precision = resolved_precision(config, cuda=True, bf16_supported=bf16_supported)
    return {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
            "bnb_4bit_compute_dtype": PRECISION_DTYPES[precision]}


def peft_lora_config(config: TrainConfig) -> dict[str, Any] | None:
    """``peft.LoraConfig`` keyword arguments for LoRA and QLoRA; None for a full fine-tune."""
    if config.method == "full":
        return None
    lora = config.lora
    targets: str | list[str] = ALL_LINEAR if lora.target_modules == (ALL_LINEAR,) else list(lora.target_modules)
    return {"r": lora.r, "lora_alpha": lora.alpha, "lora_dropout": lora.dropout, "target_modules": targets,
            "modules_to_save": list(lora.modules_to_save) or None, "bias": "none", "task_type": "CAUSAL_LM"}
