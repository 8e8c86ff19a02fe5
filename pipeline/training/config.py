"""A training run's configuration: strict parsing, plain-English refusals, and the seeds' published presets.

``config_from_dict`` reads run-config JSON and raises ``TrainConfigError`` (message starting with the
field's name) on an unknown key, a wrong type or a value out of range. ``config_refusals`` says, in
plain English, why a valid config cannot run on a machine with a given number of CUDA devices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

TARGETS = ("chat", "salam_assistant", "lema_student", "fair_student", "gsi_iteration", "dpo")
METHODS = ("lora", "qlora", "full")
OBJECTIVES = ("sft", "dpo")
SCHEDULERS = ("constant", "linear", "cosine")
DEVICES = ("auto", "cpu", "cuda")
LAUNCHERS = ("torchrun", "deepspeed", "accelerate")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEEPSPEED_STAGES = (0, 2, 3)
PARTS = ("main", "feedback", "rationale", "cot")  # what an SFT example teaches; loss_weights are keyed by these
ALL_LINEAR = "all-linear"  # peft's shorthand for every linear layer but the output head


class TrainConfigError(ValueError):
    """A training configuration that cannot be read; the message starts with the field's name."""


@dataclass(frozen=True)
class LoraSettings:
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = (ALL_LINEAR,)
    modules_to_save: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainConfig:
    """One training run. ``max_steps`` > 0 wins over ``epochs``; the global batch is
    ``batch_size * grad_accumulation * devices``."""

    base_model: str  # a Hugging Face folder, or "packaged:smollm2"
    target: str = "chat"  # what the data teaches; the runner only tells dpo apart
    method: str = "lora"
    objective: str = "sft"
    lora: LoraSettings = LoraSettings()
    learning_rate: float = 2e-4
    lr_scheduler: str = "constant"
    warmup_ratio: float = 0.0
    max_steps: int = 0
    epochs: float = 1.0
    batch_size: int = 4  # per device
    grad_accumulation: int = 1
    max_length: int = 1024  # tokens; longer examples are truncated (and counted)
    loss_weights: dict[str, float] = field(default_factory=dict)  # part -> weight; a part not listed weighs 1.0
    dpo_beta: float = 0.1
    log_every: int = 10
    eval_every: int = 0  # 0: eval loss only at the end, when there is eval data
    save_every: int = 50
    seed: int = 0
    devices: int = 1
    device: str = "auto"
    deepspeed_stage: int = 0  # 0: no DeepSpeed
    offload: bool = False  # ZeRO optimizer state (and with ZeRO-3 parameters) in CPU memory
    launcher: str = "torchrun"  # used when more than one process is started
    precision: str = "auto"
    merge: bool = False  # also save the adapter merged into the base weights (LoRA, QLoRA)
    torch_threads: int = 0  # 0: torch's default

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; ``config_from_dict(config.to_dict()) == config``."""
        data = asdict(self)
        data["lora"] = {**data["lora"], "target_modules": list(self.lora.target_modules),
                        "modules_to_save": list(self.lora.modules_to_save)}
        return data


# --- field checks: each returns what is wrong with a value, or None ---------------------------------

Check = Callable[[Any], "str | None"]


def _whole(low: int, high: int) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            return f"must be a whole number from {low} to {high}, got {value!r}"
        return None
    return check


def _number(accepts: Callable[[float], bool], wanted: str) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not accepts(value):
            return f"must be a number {wanted}, got {value!r}"
        return None
    return check


def _choice(options: tuple, described: str = "") -> Check:
    def check(value: Any) -> str | None:
        # type() first: True == 1 and False == 0 would otherwise pass for a whole-number choice
        if type(value) is not type(options[0]) or value not in options:
            return f"must be {described or 'one of ' + ', '.join(map(str, options))}, got {value!r}"
        return None
    return check


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


def _text(value: Any) -> str | None:
    return None if isinstance(value, str) and value.strip() else f"must be a non-empty string, got {value!r}"


def _module_names(required: bool) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, tuple) or not all(isinstance(name, str) and name.strip() for name in value):
            return f"must be a list of module names, got {value!r}"
        if required and not value:
            return f'must name at least one module (or "{ALL_LINEAR}")'
        if ALL_LINEAR in value and len(value) > 1:
            return f'must be ["{ALL_LINEAR}"] alone or a list of module names, not both'
        return None
    return check


_CHECKS: dict[str, Check] = {
    "base_model": _text,
    "target": _choice(TARGETS),
    "method": _choice(METHODS),
    "objective": _choice(OBJECTIVES),
    "learning_rate": _number(lambda v: 0 < v <= 1, "above 0 and at most 1"),
    "lr_scheduler": _choice(SCHEDULERS),
    "warmup_ratio": _number(lambda v: 0 <= v < 1, "from 0 up to (not including) 1"),
    "max_steps": _whole(0, 10_000_000),
    "epochs": _number(lambda v: 0 < v <= 1000, "above 0 and at most 1000"),
    "batch_size": _whole(1, 4096),
    "grad_accumulation": _whole(1, 4096),
    "max_length": _whole(16, 1_048_576),
    "dpo_beta": _number(lambda v: 0 < v <= 100, "above 0 and at most 100"),
    "log_every": _whole(1, 1_000_000),
    "eval_every": _whole(0, 1_000_000),
    "save_every": _whole(1, 1_000_000),
    "seed": _whole(0, 2**32 - 1),  # numpy's seed range, which transformers.set_seed feeds
    "devices": _whole(1, 64),
    "device": _choice(DEVICES),
    "deepspeed_stage": _choice(DEEPSPEED_STAGES, "0 (no DeepSpeed), 2 or 3"),
    "offload": _flag,
    "launcher": _choice(LAUNCHERS),
    "precision": _choice(PRECISIONS),
    "merge": _flag,
    "torch_threads": _whole(0, 1024),
}
_LORA_CHECKS: dict[str, Check] = {
    "r": _whole(1, 1024),
    "alpha": _whole(1, 4096),
    "dropout": _number(lambda v: 0 <= v < 1, "from 0 up to (not including) 1"),
    "target_modules": _module_names(required=True),
    "modules_to_save": _module_names(required=False),
}
_FLOATS = {"learning_rate", "warmup_ratio", "epochs", "dpo_beta", "dropout"}
_weight = _number(lambda v: 0 <= v <= 100, "from 0 to 100")


def field_problems(config: TrainConfig) -> list[str]:
    """What is wrong with each field on its own (types and ranges), each message starting with the field."""
    problems = [f"{name} {error}" for name, check in _CHECKS.items() if (error := check(getattr(config, name)))]
    if isinstance(config.lora, LoraSettings):
        problems += [f"lora.{name} {error}" for name, check in _LORA_CHECKS.items()
                     if (error := check(getattr(config.lora, name)))]
    else:
        problems.append(f"lora must be an object with {', '.join(_LORA_CHECKS)}, got {config.lora!r}")
    return problems + _loss_weight_problems(config.loss_weights)


def _loss_weight_problems(weights: Any) -> list[str]:
    if not isinstance(weights, dict):
        return [f"loss_weights must map example parts ({', '.join(PARTS)}) to weights, got {weights!r}"]
    problems = [f"loss_weights has an unknown part {part!r}; known: {', '.join(PARTS)}"
                for part in weights if part not in PARTS]
    return problems + [f"loss_weights[{part!r}] {error}" for part, weight in weights.items()
                       if part in PARTS and (error := _weight(weight))]


# --- parsing ---------------------------------------------------------------------------------------

def config_from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """A config from run-config JSON; anything unknown, mistyped or out of range is a TrainConfigError."""
    if not isinstance(data, Mapping):
        raise TrainConfigError(f"config must be a JSON object, got {type(data).__name__}")
    values = _known_keys(data, TrainConfig, "")
    if "base_model" not in values:
        raise TrainConfigError('base_model is required: a model folder or "packaged:smollm2"')
    values["lora"] = _lora_from(values.get("lora", {}))
    if isinstance(values.get("loss_weights"), Mapping):
        values["loss_weights"] = dict(values["loss_weights"])
    config = TrainConfig(**_floats(values))
    problems = field_problems(config)
    if problems:
        raise TrainConfigError(problems[0])
    return config


def _known_keys(data: Mapping[str, Any], cls: type, prefix: str) -> dict[str, Any]:
    known = [f.name for f in fields(cls)]
    unknown = sorted(str(key) for key in data if key not in known)
    if unknown:
        raise TrainConfigError(f"{prefix}{unknown[0]} is not a setting; known: {', '.join(known)}")
    return dict(data)


def _lora_from(raw: Any) -> LoraSettings:
    if isinstance(raw, LoraSettings):
        return raw
    if not isinstance(raw, Mapping):
        raise TrainConfigError(f"lora must be an object with {', '.join(_LORA_CHECKS)}, got {raw!r}")
    values = _known_keys(raw, LoraSettings, "lora.")
    for name in ("target_modules", "modules_to_save"):
        if isinstance(values.get(name), list):
            values[name] = tuple(values[name])
        elif values.get(name) == ALL_LINEAR:  # peft's own spelling: the string, not a list
            values[name] = (ALL_LINEAR,)
    return LoraSettings(**_floats(values))


def _floats(values: dict[str, Any]) -> dict[str, Any]:
    """Whole numbers given for float settings become floats, so a config reads back equal to itself."""
    return {name: float(value) if name in _FLOATS and type(value) is int else value
            for name, value in values.items()}


# --- combinations that cannot run ------------------------------------------------------------------

def config_refusals(config: TrainConfig, *, cuda_devices: int) -> list[str]:
    """Plain-English reasons ``config`` cannot run on a machine with ``cuda_devices`` GPUs; [] when it can."""
    problems = field_problems(config)
    if problems:  # the combination checks below assume every field is well formed
        return problems
    on_cuda = config.device != "cpu" and cuda_devices > 0
    return (_hardware_refusals(config, on_cuda, cuda_devices) + _deepspeed_refusals(config, on_cuda)
            + _method_refusals(config))


def _hardware_refusals(config: TrainConfig, on_cuda: bool, cuda_devices: int) -> list[str]:
    refusals = []
    if config.device == "cuda" and cuda_devices == 0:
        refusals.append("device is cuda but this machine has no CUDA GPU: use device auto or cpu")
    if config.method == "qlora" and not on_cuda:
        refusals.append("QLoRA needs a CUDA GPU (bitsandbytes 4-bit); this machine has none: use lora"
                        if cuda_devices == 0 else
                        "QLoRA needs a CUDA GPU (bitsandbytes 4-bit) but device is cpu: use device auto or cuda, "
                        "or method lora")
    if config.devices > 1 and not on_cuda:
        refusals.append(f"devices is {config.devices} but training on CPU runs in one process: set devices to 1")
    if on_cuda and config.devices > cuda_devices:
        refusals.append(f"devices is {config.devices} but this machine has {_gpus(cuda_devices)}")
    if config.precision == "fp16" and not on_cuda:
        # bf16 autocast is supported on CPU by torch and the HF Trainer (use_cpu); fp16 training is not.
        refusals.append("fp16 mixed precision needs a CUDA GPU; on CPU use bf16, fp32 or auto")
    return refusals


def _gpus(count: int) -> str:
    return f"{count} CUDA GPU" if count == 1 else f"{count} CUDA GPUs"


def _deepspeed_refusals(config: TrainConfig, on_cuda: bool) -> list[str]:
    stage, refusals = config.deepspeed_stage, []
    if stage and not on_cuda:
        refusals.append("DeepSpeed runs on CUDA GPUs only in Errata; to train on CPU set deepspeed_stage to 0")
    if stage == 3 and config.devices == 1 and not config.offload:
        refusals.append("ZeRO-3 shards parameters across devices; with one device it only helps with offload=true")
    if config.offload and stage == 0:
        refusals.append("offload moves ZeRO's optimizer state (and with ZeRO-3 the parameters) to CPU memory: "
                        "it needs deepspeed_stage 2 or 3")
    if stage == 3 and config.method == "qlora":
        refusals.append("QLoRA with ZeRO-3 needs the 4-bit weights stored in the compute dtype and sharded while "
                        "loading (bnb_4bit_quant_storage, zero.Init), which Errata does not set up: use "
                        "deepspeed_stage 2 or 0 with qlora, or method lora with ZeRO-3")
    return refusals


def _method_refusals(config: TrainConfig) -> list[str]:
    refusals = []
    if config.merge and config.method == "full":
        refusals.append("merge folds a LoRA adapter into the base weights; a full fine-tune saves whole weights "
                        "already: set merge to false")
    if config.objective == "dpo" and config.loss_weights:
        refusals.append("loss_weights weigh the parts of SFT examples; DPO pairs have no parts: remove loss_weights")
    if config.target == "dpo" and config.objective != "dpo":
        refusals.append("target dpo holds preference pairs ({prompt, chosen, rejected}): set objective to dpo")
    if config.objective == "dpo" and config.target != "dpo":
        refusals.append(f"objective dpo trains on preference pairs but target {config.target} holds chat "
                        "examples: set target to dpo, or objective to sft")
    return refusals


# --- presets ---------------------------------------------------------------------------------------

PRESETS: dict[str, dict[str, Any]] = {
    # LEMA: QLoRA (4-bit NF4), r 64, alpha 16, dropout 0.05 on all linear layers, lr 2e-4, constant, 1,000
    # steps, global batch 96 = batch_size 4 x grad_accumulation 24 x 1 GPU (QLoRA is one-GPU training).
    "lema-qlora": {
        "target": "lema_student", "method": "qlora",
        "lora": {"r": 64, "alpha": 16, "dropout": 0.05, "target_modules": [ALL_LINEAR]},
        "learning_rate": 2e-4, "lr_scheduler": "constant", "max_steps": 1000,
        "batch_size": 4, "grad_accumulation": 24, "devices": 1, "save_every": 100,
    },
    # SALAM: full fine-tune with ZeRO-3, lr 1e-5, cosine, 4,000 steps. Batch and GPU count are not
    # published: 4 GPUs x 4 per device x 2 accumulated = 32 is Errata's choice.
    "salam-full-zero3": {
        "target": "salam_assistant", "method": "full", "learning_rate": 1e-5, "lr_scheduler": "cosine",
        "max_steps": 4000, "deepspeed_stage": 3, "devices": 4, "launcher": "deepspeed",
        "batch_size": 4, "grad_accumulation": 2, "save_every": 500,
    },
    # GSI: full fine-tune with ZeRO-2, lr 1e-5, one epoch per self-improvement iteration (run one training
    # per iteration). Batch and GPU count are Errata's choice, as for SALAM.
    "gsi-full-zero2": {
        "target": "gsi_iteration", "method": "full", "learning_rate": 1e-5, "epochs": 1.0,
        "deepspeed_stage": 2, "devices": 4, "launcher": "deepspeed",
        "batch_size": 4, "grad_accumulation": 2, "save_every": 500,
    },
    # FAIR: full fine-tune, lr 1e-5, 10 epochs, loss 0.5 * feedback + 0.5 * rationale.
    "fair-full": {
        "target": "fair_student", "method": "full", "learning_rate": 1e-5, "epochs": 10.0,
        "loss_weights": {"feedback": 0.5, "rationale": 0.5}, "save_every": 500,
    },
    # A LoRA of SmolLM2-135M on CPU in a few minutes (about 3-5 s a step on one core at this size).
    "cpu-lora-smollm2": {
        "target": "chat", "method": "lora",
        "lora": {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": [ALL_LINEAR]},
        "learning_rate": 2e-4, "lr_scheduler": "constant", "max_steps": 50, "batch_size": 2,
        "max_length": 512, "device": "cpu", "precision": "fp32", "log_every": 5, "save_every": 25,
    },
    # What makes a tiny model memorise a few dozen Q->A pairs on CPU in seconds (see MACHINE.md): LoRA on
    # every linear layer plus a trained copy of the (untied) output head, lr 1e-2 decaying linearly to 0 over 200
    # steps (held constant, the loss stalls near 0.16 and one answer in eight comes out wrong).
    "cpu-lora-tiny": {
        "target": "chat", "method": "lora",
        "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": [ALL_LINEAR], "modules_to_save": ["lm_head"]},
        "learning_rate": 1e-2, "lr_scheduler": "linear", "max_steps": 200, "batch_size": 8,
        "max_length": 128, "device": "cpu", "precision": "fp32", "log_every": 10, "save_every": 100,
    },
}


def preset_config(name: str, base_model: str, **overrides: Any) -> TrainConfig:
    """A preset's config for ``base_model``; ``overrides`` replace its settings (``lora`` key by key)."""
    if name not in PRESETS:
        raise TrainConfigError(f"preset {name!r} is unknown; known: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    values = {**preset, **overrides, "base_model": base_model}
    if isinstance(overrides.get("lora"), Mapping):
        values["lora"] = {**preset.get("lora", {}), **overrides["lora"]}
    return config_from_dict(values)
