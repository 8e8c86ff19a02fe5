"""Training configs: strict parsing with the field named first, every refusal in plain English, the presets."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pipeline.training.config import (
    PRESETS, LoraSettings, TrainConfig, TrainConfigError, config_from_dict, config_refusals, preset_config,
)

MODEL = "/models/llama"


def parse(**values) -> TrainConfig:
    return config_from_dict({"base_model": MODEL, **values})


# --- parsing ---------------------------------------------------------------------------------------

def test_it_fills_the_contract_defaults():
    config = parse()
    assert config == TrainConfig(base_model=MODEL)
    assert (config.method, config.objective, config.learning_rate, config.lora) == (
        "lora", "sft", 2e-4, LoraSettings(r=16, alpha=32, dropout=0.05, target_modules=("all-linear",)))


def test_to_dict_is_json_and_reads_back_equal():
    config = parse(lora={"r": 4, "target_modules": ["q_proj", "v_proj"], "modules_to_save": ["lm_head"]},
                   loss_weights={"feedback": 0.5, "rationale": 0.5}, epochs=3, deepspeed_stage=2)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["lora"]["target_modules"] == ["q_proj", "v_proj"]
    assert config_from_dict(data) == config


def test_whole_numbers_for_float_settings_read_as_floats():
    config = parse(epochs=3, learning_rate=1, lora={"dropout": 0})
    assert (type(config.epochs), type(config.learning_rate), type(config.lora.dropout)) == (float, float, float)


def test_lora_takes_peft_s_all_linear_string_and_lists():
    assert parse(lora={"target_modules": "all-linear"}).lora.target_modules == ("all-linear",)
    assert parse(lora={"target_modules": ["q_proj"]}).lora.target_modules == ("q_proj",)


@pytest.mark.parametrize("values, message", [
    ({"epoch": 2}, "epoch is not a setting"),
    ({"lora": {"rank": 8}}, "lora.rank is not a setting"),
    ({"lora": 8}, "lora must be an object"),
    ({"batch_size": 0}, "batch_size must be a whole number from 1 to 4096, got 0"),
    ({"batch_size": True}, "batch_size must be a whole number"),  # a bool is not a count
    ({"batch_size": 2.0}, "batch_size must be a whole number"),
    ({"max_steps": -1}, "max_steps must be a whole number from 0"),
    ({"learning_rate": 0}, "learning_rate must be a number above 0 and at most 1, got 0"),
    ({"learning_rate": -1e-5}, "learning_rate must be a number above 0"),
    ({"learning_rate": "2e-4"}, "learning_rate must be a number"),
    ({"learning_rate": float("nan")}, "learning_rate must be a number"),
    ({"warmup_ratio": 1.0}, "warmup_ratio must be a number from 0 up to (not including) 1"),
    ({"epochs": 0}, "epochs must be a number above 0"),
    ({"dpo_beta": 0}, "dpo_beta must be a number above 0"),
    ({"method": "dora"}, "method must be one of lora, qlora, full, got 'dora'"),
    ({"objective": "ppo"}, "objective must be one of sft, dpo"),
    ({"target": "imported"}, "target must be one of chat, salam_assistant"),
    ({"lr_scheduler": "step"}, "lr_scheduler must be one of constant, linear, cosine"),
    ({"device": "mps"}, "device must be one of auto, cpu, cuda"),
    ({"launcher": "srun"}, "launcher must be one of torchrun, deepspeed, accelerate"),
    ({"precision": "fp8"}, "precision must be one of auto, fp32, bf16, fp16"),
    ({"deepspeed_stage": 1}, "deepspeed_stage must be 0 (no DeepSpeed), 2 or 3, got 1"),
    ({"deepspeed_stage": False}, "deepspeed_stage must be 0"),  # False == 0 but is not a stage
    ({"offload": 1}, "offload must be true or false, got 1"),
    ({"merge": "yes"}, "merge must be true or false"),
    ({"devices": 0}, "devices must be a whole number from 1"),
    ({"save_every": 0}, "save_every must be a whole number from 1"),
    ({"log_every": 0}, "log_every must be a whole number from 1"),
    ({"eval_every": -1}, "eval_every must be a whole number from 0"),
    ({"max_length": 8}, "max_length must be a whole number from 16"),
    ({"seed": 2**32}, "seed must be a whole number from 0 to 4294967295"),
    ({"torch_threads": -1}, "torch_threads must be a whole number from 0"),
    ({"base_model": " "}, "base_model must be a non-empty string"),
    ({"lora": {"r": 0}}, "lora.r must be a whole number from 1"),
    ({"lora": {"alpha": 0.5}}, "lora.alpha must be a whole number"),
    ({"lora": {"dropout": 1.0}}, "lora.dropout must be a number from 0 up to (not including) 1"),
    ({"lora": {"target_modules": []}}, 'lora.target_modules must name at least one module (or "all-linear")'),
    ({"lora": {"target_modules": ["all-linear", "q_proj"]}}, 'lora.target_modules must be ["all-linear"] alone'),
    ({"lora": {"target_modules": "q_proj,v_proj"}}, "lora.target_modules must be a list of module names"),
    ({"lora": {"modules_to_save": [""]}}, "lora.modules_to_save must be a list of module names"),
    ({"loss_weights": {"answer": 1.0}}, "loss_weights has an unknown part 'answer'; known: main, feedback"),
    ({"loss_weights": {"feedback": -0.5}}, "loss_weights['feedback'] must be a number from 0 to 100"),
    ({"loss_weights": [0.5, 0.5]}, "loss_weights must map example parts"),
])
def test_it_rejects_a_bad_field_naming_it_first(values, message):
    with pytest.raises(TrainConfigError) as caught:
        parse(**values)
    assert str(caught.value).startswith(message)


def test_it_needs_a_base_model_and_a_json_object():
    with pytest.raises(TrainConfigError, match="^base_model is required"):
        config_from_dict({"method": "lora"})
    with pytest.raises(TrainConfigError, match="^config must be a JSON object"):
        config_from_dict(["base_model"])


# --- refusals --------------------------------------------------------------------------------------

GPU = {"device": "auto"}


@pytest.mark.parametrize("values, cuda_devices, refusal", [
    ({"method": "qlora"}, 0, "QLoRA needs a CUDA GPU (bitsandbytes 4-bit); this machine has none: use lora"),
    ({"method": "qlora", "device": "cpu"}, 1,
     "QLoRA needs a CUDA GPU (bitsandbytes 4-bit) but device is cpu: use device auto or cuda, or method lora"),
    ({"device": "cuda"}, 0, "device is cuda but this machine has no CUDA GPU: use device auto or cpu"),
    ({"devices": 2}, 0, "devices is 2 but training on CPU runs in one process: set devices to 1"),
    ({"devices": 2, "device": "cpu"}, 4, "devices is 2 but training on CPU runs in one process: set devices to 1"),
    ({"devices": 4}, 2, "devices is 4 but this machine has 2 CUDA GPUs"),
    ({"devices": 2}, 1, "devices is 2 but this machine has 1 CUDA GPU"),
    ({"precision": "fp16"}, 0, "fp16 mixed precision needs a CUDA GPU; on CPU use bf16, fp32 or auto"),
    ({"deepspeed_stage": 2}, 0, "DeepSpeed runs on CUDA GPUs only in Errata; to train on CPU set deepspeed_stage to 0"),
    ({"deepspeed_stage": 3}, 1, "ZeRO-3 shards parameters across devices; with one device it only helps with offload=true"),
    ({"offload": True}, 1, "offload moves ZeRO's optimizer state (and with ZeRO-3 the parameters) to CPU memory: "
                           "it needs deepspeed_stage 2 or 3"),
    ({"method": "qlora", "deepspeed_stage": 3, "devices": 2}, 2,
     "QLoRA with ZeRO-3 needs the 4-bit weights stored in the compute dtype and sharded while loading "
     "(bnb_4bit_quant_storage, zero.Init), which Errata does not set up: use deepspeed_stage 2 or 0 with qlora, "
     "or method lora with ZeRO-3"),
    ({"method": "full", "merge": True}, 0, "merge folds a LoRA adapter into the base weights; a full fine-tune "
                                           "saves whole weights already: set merge to false"),
    ({"objective": "dpo", "target": "dpo", "loss_weights": {"main": 1.0}}, 0,
     "loss_weights weigh the parts of SFT examples; DPO pairs have no parts: remove loss_weights"),
    ({"target": "dpo"}, 0, "target dpo holds preference pairs ({prompt, chosen, rejected}): set objective to dpo"),
    ({"objective": "dpo", "target": "chat"}, 0,
     "objective dpo trains on preference pairs but target chat holds chat examples: set target to dpo, or "
     "objective to sft"),
])
def test_it_refuses_a_combination_that_cannot_run(values, cuda_devices, refusal):
    assert config_refusals(parse(**values), cuda_devices=cuda_devices) == [refusal]


@pytest.mark.parametrize("values, cuda_devices", [
    ({}, 0),  # plain LoRA on CPU
    ({"precision": "bf16"}, 0),  # torch autocasts bf16 on CPU and the Trainer allows it with use_cpu
    ({"precision": "fp16"}, 1),
    ({"method": "qlora", "merge": True}, 1),  # the runner merges into a 16-bit reload of the base
    ({"method": "qlora", "deepspeed_stage": 2, "devices": 2}, 2),
    ({"deepspeed_stage": 3, "offload": True}, 1),
    ({"deepspeed_stage": 3, "devices": 2, "method": "full"}, 8),
    ({"devices": 1, "launcher": "accelerate"}, 1),  # the launcher is not used for one process
    ({"objective": "dpo", "target": "dpo"}, 0),
])
def test_it_accepts_combinations_that_can_run(values, cuda_devices):
    assert config_refusals(parse(**values), cuda_devices=cuda_devices) == []


def test_it_lists_every_refusal_at_once():
    config = parse(method="qlora", devices=2, deepspeed_stage=2)
    assert [reason.split(" ")[0] for reason in config_refusals(config, cuda_devices=0)] == ["QLoRA", "devices", "DeepSpeed"]


def test_a_config_built_by_hand_is_refused_for_its_bad_fields():
    config = replace(TrainConfig(base_model=MODEL), batch_size=0, learning_rate=-1.0, deepspeed_stage=1)
    assert config_refusals(config, cuda_devices=1) == [
        "learning_rate must be a number above 0 and at most 1, got -1.0",
        "batch_size must be a whole number from 1 to 4096, got 0",
        "deepspeed_stage must be 0 (no DeepSpeed), 2 or 3, got 1",
    ]


# --- presets ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("name, cuda_devices", [
    ("lema-qlora", 1), ("salam-full-zero3", 4), ("gsi-full-zero2", 4), ("fair-full", 1),
    ("cpu-lora-smollm2", 0), ("cpu-lora-tiny", 0),
])
def test_every_preset_parses_and_runs_where_it_is_meant_to(name, cuda_devices):
    config = preset_config(name, MODEL)
    assert "base_model" not in PRESETS[name]
    assert config_refusals(config, cuda_devices=cuda_devices) == []
    assert config_from_dict(config.to_dict()) == config


def test_lema_preset_holds_lemas_published_qlora_settings():
    config = preset_config("lema-qlora", MODEL)
    assert (config.method, config.lora.r, config.lora.alpha, config.lora.dropout, config.lora.target_modules) == (
        "qlora", 64, 16, 0.05, ("all-linear",))
    assert (config.learning_rate, config.lr_scheduler, config.max_steps) == (2e-4, "constant", 1000)
    assert config.batch_size * config.grad_accumulation * config.devices == 96  # LEMA's global batch


def test_full_fine_tune_presets_hold_the_seeds_settings():
    salam, gsi, fair = (preset_config(name, MODEL) for name in ("salam-full-zero3", "gsi-full-zero2", "fair-full"))
    assert (salam.method, salam.deepspeed_stage, salam.learning_rate, salam.lr_scheduler, salam.max_steps) == (
        "full", 3, 1e-5, "cosine", 4000)
    assert (gsi.method, gsi.deepspeed_stage, gsi.learning_rate, gsi.epochs, gsi.max_steps) == ("full", 2, 1e-5, 1.0, 0)
    assert (fair.method, fair.learning_rate, fair.epochs, fair.loss_weights) == (
        "full", 1e-5, 10.0, {"feedback": 0.5, "rationale": 0.5})


def test_tiny_preset_is_the_memorising_recipe():
    tiny = preset_config("cpu-lora-tiny", MODEL)
    assert (tiny.learning_rate, tiny.lora.modules_to_save, tiny.lora.target_modules, tiny.max_steps, tiny.device) == (
        1e-2, ("lm_head",), ("all-linear",), 200, "cpu")
    smollm2 = preset_config("cpu-lora-smollm2", "packaged:smollm2")
    assert (smollm2.lora.r, smollm2.lora.alpha, smollm2.max_length, smollm2.device) == (8, 16, 512, "cpu")


def test_preset_overrides_replace_settings_and_merge_lora_key_by_key():
    config = preset_config("lema-qlora", MODEL, max_steps=10, lora={"r": 8})
    assert (config.max_steps, config.lora.r, config.lora.alpha) == (10, 8, 16)
    assert PRESETS["lema-qlora"]["lora"]["r"] == 64  # the preset itself is untouched


def test_preset_overrides_are_checked_like_any_setting():
    with pytest.raises(TrainConfigError, match="^batch_size must be"):
        preset_config("fair-full", MODEL, batch_size=0)
    with pytest.raises(TrainConfigError, match="^preset 'lema' is unknown; known: lema-qlora"):
        preset_config("lema", MODEL)
