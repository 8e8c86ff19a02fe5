"""Launch pieces as plain data: argv lists per launcher, DeepSpeed configs, peft and bitsandbytes settings.

The slow tests hand the built values to the real parsers and classes (torchrun's and accelerate's argument
parsers, peft.LoraConfig, transformers.BitsAndBytesConfig, and where DeepSpeed is installed the HF
Trainer's DeepSpeed config), so a misspelt flag or keyword fails here rather than on a GPU machine.
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline.training.config import preset_config
from pipeline.training.launch import (
    bitsandbytes_config, deepspeed_config, launcher_argv, peft_lora_config, resolved_precision,
)

MODEL = "/models/llama"
ARGS = ["--spec", "/runs/12/spec.json"]


def config(**overrides):
    return preset_config("fair-full", MODEL, **overrides)


# --- launcher argv ---------------------------------------------------------------------------------

def test_one_device_without_deepspeed_runs_plain_python_whatever_the_launcher():
    for launcher in ("torchrun", "deepspeed", "accelerate"):
        argv = launcher_argv(config(launcher=launcher), args=ARGS, python="/venv/bin/python")
        assert argv == ["/venv/bin/python", "-m", "gpu_worker.training", "--spec", "/runs/12/spec.json"]


@pytest.mark.parametrize("launcher, expected", [
    ("torchrun", ["/venv/bin/python", "-m", "torch.distributed.run", "--nproc_per_node", "4", "--master_port", "29611",
                  "-m", "gpu_worker.training", *ARGS]),
    # --no_local_rank: otherwise the deepspeed launcher appends --local_rank=N to the module's arguments
    ("deepspeed", ["deepspeed", "--num_gpus", "4", "--master_port", "29611", "--no_local_rank", "--module",
                   "gpu_worker.training", *ARGS]),
    ("accelerate", ["/venv/bin/python", "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "4",
                    "--num_machines", "1", "--main_process_port", "29611", "-m", "gpu_worker.training", *ARGS]),
])
def test_several_devices_use_the_configured_launcher(launcher, expected):
    argv = launcher_argv(config(devices=4, launcher=launcher), args=ARGS, python="/venv/bin/python", master_port=29611)
    assert argv == expected
    assert all(isinstance(part, str) for part in argv)


def test_accelerate_with_a_zero_stage_passes_the_deepspeed_config_file():
    argv = launcher_argv(config(devices=2, launcher="accelerate", deepspeed_stage=2), args=ARGS, python="py",
                         deepspeed_config_file="/runs/12/ds.json")
    assert argv == ["py", "-m", "accelerate.commands.launch", "--use_deepspeed", "--deepspeed_config_file",
                    "/runs/12/ds.json", "--num_processes", "2", "--num_machines", "1", "--main_process_port", "29500",
                    "-m", "gpu_worker.training", *ARGS]


def test_accelerate_with_a_zero_stage_and_no_config_file_is_an_error():
    with pytest.raises(ValueError, match="needs deepspeed_config_file"):
        launcher_argv(config(devices=2, launcher="accelerate", deepspeed_stage=3), args=ARGS)


def test_one_device_under_deepspeed_still_goes_through_a_launcher():
    # ZeRO-3 with offload on one GPU: DeepSpeed wants RANK, WORLD_SIZE and MASTER_* set, as a launcher does.
    argv = launcher_argv(config(deepspeed_stage=3, offload=True), args=[], python="py", module="m")
    assert argv == ["py", "-m", "torch.distributed.run", "--nproc_per_node", "1", "--master_port", "29500", "-m", "m"]


def test_the_default_python_is_this_interpreter_and_every_part_is_text():
    argv = launcher_argv(config(), args=["--spec", Path("/runs/12/spec.json")])
    assert argv == [sys.executable, "-m", "gpu_worker.training", "--spec", "/runs/12/spec.json"]


# --- DeepSpeed configs -----------------------------------------------------------------------------

AUTO_BATCH = {"train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
              "train_batch_size": "auto", "gradient_clipping": "auto"}


def test_no_zero_stage_means_no_deepspeed_config():
    assert deepspeed_config(config()) is None


def test_zero2_config_leaves_batch_values_to_the_trainer():
    assert deepspeed_config(config(deepspeed_stage=2, precision="bf16")) == {
        **AUTO_BATCH, "bf16": {"enabled": True}, "fp16": {"enabled": False},
        "zero_optimization": {"stage": 2, "overlap_comm": True, "contiguous_gradients": True,
                              "reduce_bucket_size": "auto"},
    }


def test_zero3_with_offload_moves_optimizer_and_parameters_to_cpu():
    cpu = {"device": "cpu", "pin_memory": True}
    assert deepspeed_config(config(deepspeed_stage=3, offload=True, precision="auto")) == {
        **AUTO_BATCH, "bf16": {"enabled": "auto"}, "fp16": {"enabled": "auto"},
        "zero_optimization": {
            "stage": 3, "overlap_comm": True, "contiguous_gradients": True, "reduce_bucket_size": "auto",
            "stage3_prefetch_bucket_size": "auto", "stage3_param_persistence_threshold": "auto",
            "stage3_gather_16bit_weights_on_model_save": True, "offload_optimizer": cpu, "offload_param": cpu,
        },
        "optimizer": {"type": "AdamW", "params": {"lr": "auto", "betas": "auto", "eps": "auto", "weight_decay": "auto"}},
    }


def test_zero2_offload_moves_only_the_optimizer():
    zero = deepspeed_config(config(deepspeed_stage=2, offload=True, precision="fp16"))
    assert (zero["zero_optimization"]["offload_optimizer"], "offload_param" in zero["zero_optimization"]) == (
        {"device": "cpu", "pin_memory": True}, False)
    assert (zero["bf16"], zero["fp16"]) == ({"enabled": False}, {"enabled": True})


# --- precision, bitsandbytes, peft -----------------------------------------------------------------

@pytest.mark.parametrize("precision, cuda, bf16_supported, expected", [
    ("auto", False, True, "fp32"),
    ("auto", True, True, "bf16"),
    ("auto", True, False, "fp16"),  # a V100 or T4
    ("fp32", True, True, "fp32"),
    ("bf16", False, False, "bf16"),  # an explicit choice stands
])
def test_resolved_precision(precision, cuda, bf16_supported, expected):
    assert resolved_precision(config(precision=precision), cuda=cuda, bf16_supported=bf16_supported) == expected


def test_qlora_gets_nf4_double_quantised_4_bit_in_the_compute_dtype():
    lema = preset_config("lema-qlora", MODEL)
    assert bitsandbytes_config(lema) == {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4",
                                         "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": "bfloat16"}
    assert bitsandbytes_config(lema, bf16_supported=False)["bnb_4bit_compute_dtype"] == "float16"
    assert bitsandbytes_config(preset_config("lema-qlora", MODEL, precision="fp32"))["bnb_4bit_compute_dtype"] == "float32"


def test_only_qlora_quantises():
    assert bitsandbytes_config(config()) is None
    assert bitsandbytes_config(preset_config("cpu-lora-tiny", MODEL)) is None


def test_peft_settings_use_peft_s_names_and_all_linear_as_a_string():
    assert peft_lora_config(preset_config("cpu-lora-tiny", MODEL)) == {
        "r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "target_modules": "all-linear", "modules_to_save": ["lm_head"],
        "bias": "none", "task_type": "CAUSAL_LM"}
    named = preset_config("cpu-lora-smollm2", MODEL, lora={"target_modules": ["q_proj", "v_proj"]})
    assert (peft_lora_config(named)["target_modules"], peft_lora_config(named)["modules_to_save"]) == (
        ["q_proj", "v_proj"], None)
    assert peft_lora_config(config()) is None  # a full fine-tune has no adapter


# --- against the real parsers and classes ----------------------------------------------------------

@pytest.mark.slow
def test_torchrun_parses_the_argv_as_a_module_launch():
    from torch.distributed.run import get_args_parser

    argv = launcher_argv(config(devices=4), args=ARGS, python="py", master_port=29611)
    parsed = get_args_parser().parse_args(argv[3:])
    assert (parsed.nproc_per_node, parsed.master_port, parsed.module, parsed.training_script,
            parsed.training_script_args) == ("4", 29611, True, "gpu_worker.training", ARGS)


@pytest.mark.slow
@pytest.mark.parametrize("stage", [0, 3])
def test_accelerate_parses_the_argv_as_a_module_launch(stage):
    from accelerate.commands.launch import launch_command_parser

    argv = launcher_argv(config(devices=2, launcher="accelerate", deepspeed_stage=stage), args=ARGS, python="py",
                         master_port=29611, deepspeed_config_file="/ds.json")
    parsed = launch_command_parser().parse_args(argv[3:])
    assert (parsed.num_processes, parsed.main_process_port, parsed.module, parsed.training_script,
            parsed.training_script_args) == (2, 29611, True, "gpu_worker.training", ARGS)
    assert (parsed.multi_gpu, parsed.use_deepspeed, parsed.deepspeed_config_file) == (
        (True, False, None) if stage == 0 else (False, True, "/ds.json"))


@pytest.mark.slow
def test_peft_and_transformers_take_the_settings_as_keywords():
    peft = pytest.importorskip("peft")
    transformers = pytest.importorskip("transformers")
    lora = peft.LoraConfig(**peft_lora_config(preset_config("lema-qlora", MODEL)))
    assert (lora.r, lora.lora_alpha, lora.target_modules) == (64, 16, "all-linear")
    quantised = transformers.BitsAndBytesConfig(**bitsandbytes_config(preset_config("lema-qlora", MODEL)))
    assert (quantised.load_in_4bit, quantised.bnb_4bit_quant_type, str(quantised.bnb_4bit_compute_dtype)) == (
        True, "nf4", "torch.bfloat16")


@pytest.mark.slow
def test_the_trainer_fills_every_auto_value_of_the_deepspeed_config():
    pytest.importorskip("deepspeed")
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    ds = HfTrainerDeepSpeedConfig(deepspeed_config(config(deepspeed_stage=3, offload=True, devices=2)))
    args = SimpleNamespace(world_size=2, per_device_train_batch_size=4, gradient_accumulation_steps=3,
                           max_grad_norm=1.0, learning_rate=1e-5, adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,
                           weight_decay=0.0, save_on_each_node=False, fp16=False, fp16_full_eval=False, bf16=True,
                           bf16_full_eval=False)
    ds.trainer_config_process(args)
    assert ds.mismatches == []
    assert (ds.config["train_batch_size"], ds.config["bf16"]["enabled"], ds.is_zero3(), ds.is_offload()) == (
        24, True, True, True)
