"""The training runner's pure parts: spec checking, TrainingArguments, the weighted loss, padding, events, the folder."""

from __future__ import annotations

import json
import math
import sys

import pytest
import torch

from gpu_worker.training.arguments import training_arguments_kwargs
from gpu_worker.training.events import EVENT_MARKER, emit, metrics_event, parse_event_line
from gpu_worker.training.layout import RunFolder, newest_complete_checkpoint, write_json_atomically
from gpu_worker.training.spec import EventsTo, TrainSpec, TrainSpecError, parse_train_spec
from gpu_worker.training.task import launch_command, runner_environment
from gpu_worker.training.trainer import PaddingCollator, weighted_token_mean_loss
from pipeline.training.config import config_from_dict
from pipeline.training.tokens import IGNORE_INDEX


@pytest.fixture
def files(tmp_path):
    train = tmp_path / "train.jsonl"
    train.write_text('{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}]}\n')
    return {"train": train, "output": tmp_path / "run-12"}


def spec_of(files, *, eval_file=None, **config) -> TrainSpec:
    return parse_train_spec({
        "run_id": 12, "config": {"base_model": "/models/base", **config}, "train_file": str(files["train"]),
        "eval_file": eval_file, "output_dir": str(files["output"]),
        "reply_to": {"task": "webapp.train.tasks.train_event", "queue": "default"},
    })


# --- the spec -----------------------------------------------------------------------------------


def test_a_good_spec_comes_back_typed_and_round_trips(files):
    spec = spec_of(files, method="lora", max_steps=5)
    assert spec.run_id == 12 and spec.config.max_steps == 5
    assert spec.train_file == files["train"] and spec.eval_file is None
    assert spec.reply_to == EventsTo("webapp.train.tasks.train_event", "default")
    assert spec.folder.stop == files["output"] / "STOP"
    assert parse_train_spec(json.loads(json.dumps(spec.to_dict()))) == spec


BAD_SPECS = [
    # (what changes in a good spec, the start of the error)
    ({"run_id": None}, "spec.run_id:"),
    ({"run_id": True}, "spec.run_id:"),
    ({"config": None}, "spec.config:"),
    ({"config": {"base_model": "/m", "learning_rate": 0}}, "spec.config.learning_rate must be"),
    ({"config": {"base_model": "/m", "epoch": 3}}, "spec.config.epoch is not a setting"),
    ({"train_file": "relative.jsonl"}, "spec.train_file: expected an absolute path"),
    ({"train_file": "/nowhere/train.jsonl"}, "spec.train_file: /nowhere/train.jsonl does not exist"),
    ({"eval_file": "/nowhere/eval.jsonl"}, "spec.eval_file:"),
    ({"output_dir": ""}, "spec.output_dir:"),
    ({"reply_to": {"queue": "default"}}, "spec.reply_to.task:"),
    ({"reply_to": {"task": "t", "context": {}}}, "spec.reply_to.context: unknown field"),
    ({"priority": 3}, "spec.priority: unknown field"),
]


@pytest.mark.parametrize("changes, error_start", BAD_SPECS)
def test_a_bad_spec_is_refused_naming_the_field(files, changes, error_start):
    spec = {"run_id": 1, "config": {"base_model": "/m"}, "train_file": str(files["train"]),
            "output_dir": str(files["output"]), **changes}
    with pytest.raises(TrainSpecError) as refused:
        parse_train_spec(spec)
    assert str(refused.value).startswith(error_start)


# --- TrainingArguments --------------------------------------------------------------------------


def test_a_cpu_lora_run_gets_every_setting_from_its_config(files):
    spec = spec_of(files, learning_rate=1e-3, max_steps=40, batch_size=2, grad_accumulation=3, seed=7,
                   log_every=5, save_every=20)
    kwargs = training_arguments_kwargs(spec.config, spec)
    assert kwargs["output_dir"] == str(files["output"] / "checkpoints")
    assert (kwargs["max_steps"], kwargs["learning_rate"], kwargs["seed"], kwargs["data_seed"]) == (40, 1e-3, 7, 7)
    assert (kwargs["per_device_train_batch_size"], kwargs["gradient_accumulation_steps"]) == (2, 3)
    assert (kwargs["logging_steps"], kwargs["save_steps"], kwargs["save_strategy"]) == (5, 20, "steps")
    assert kwargs["use_cpu"] is True and kwargs["bf16"] is False and kwargs["fp16"] is False
    assert kwargs["report_to"] == "none" and kwargs["deepspeed"] is None
    assert kwargs["eval_strategy"] == "no" and kwargs["label_names"] == ["labels"]
    assert kwargs["gradient_checkpointing"] is False  # trl turns it on unless told


def test_the_kwargs_build_real_training_arguments(files):
    from transformers import TrainingArguments

    spec = spec_of(files, max_steps=3, lr_scheduler="cosine", warmup_ratio=0.1)
    args = TrainingArguments(**training_arguments_kwargs(spec.config, spec))
    assert args.lr_scheduler_type == "cosine" and args.get_warmup_steps(100) == 10
    assert args.report_to == [] and args.device.type == "cpu"


def test_a_dpo_run_gets_trls_config_with_the_same_settings(files):
    from trl import DPOConfig

    spec = spec_of(files, target="dpo", objective="dpo", max_steps=3)
    kwargs = training_arguments_kwargs(spec.config, spec)
    assert "label_names" not in kwargs
    args = DPOConfig(**kwargs, beta=0.2, max_length=64)
    assert (args.beta, args.bf16, args.gradient_checkpointing, args.max_steps) == (0.2, False, False, 3)


def test_max_steps_wins_over_epochs_and_epochs_apply_without_them(files):
    assert training_arguments_kwargs(*both(spec_of(files, max_steps=9, epochs=3.0)))["max_steps"] == 9
    kwargs = training_arguments_kwargs(*both(spec_of(files, epochs=3.0)))
    assert (kwargs["max_steps"], kwargs["num_train_epochs"]) == (-1, 3.0)


def both(spec: TrainSpec) -> tuple:
    return spec.config, spec


@pytest.mark.parametrize("scheduler, warmup, expected", [
    ("constant", 0.0, "constant"),
    ("constant", 0.1, "constant_with_warmup"),  # plain "constant" would ignore the warmup
    ("linear", 0.0, "linear"),
    ("cosine", 0.05, "cosine"),
])
def test_the_schedule_and_warmup(files, scheduler, warmup, expected):
    kwargs = training_arguments_kwargs(*both(spec_of(files, lr_scheduler=scheduler, warmup_ratio=warmup)))
    assert (kwargs["lr_scheduler_type"], kwargs["warmup_steps"]) == (expected, warmup)


@pytest.mark.parametrize("precision, cuda, bf16_supported, expected", [
    ("auto", False, False, (False, False, True)),
    ("auto", True, True, (True, False, False)),
    ("auto", True, False, (False, True, False)),  # an older GPU: fp16
    ("fp32", True, True, (False, False, False)),
    ("bf16", False, False, (True, False, True)),  # bf16 autocast on CPU, when asked for
])
def test_precision_and_device(files, precision, cuda, bf16_supported, expected):
    kwargs = training_arguments_kwargs(*both(spec_of(files, precision=precision)), cuda=cuda,
                                       bf16_supported=bf16_supported)
    assert (kwargs["bf16"], kwargs["fp16"], kwargs["use_cpu"]) == expected


def test_a_deepspeed_stage_puts_its_config_in_the_arguments(files):
    kwargs = training_arguments_kwargs(*both(spec_of(files, method="full", deepspeed_stage=2, devices=2,
                                                     launcher="deepspeed")), cuda=True)
    assert kwargs["deepspeed"]["zero_optimization"]["stage"] == 2
    assert kwargs["deepspeed"]["train_micro_batch_size_per_gpu"] == "auto"  # filled from these same arguments


def test_periodic_evaluation_needs_eval_data(files):
    assert training_arguments_kwargs(*both(spec_of(files, eval_every=10)))["eval_strategy"] == "no"
    with_eval = spec_of(files, eval_file=str(files["train"]), eval_every=10)
    kwargs = training_arguments_kwargs(with_eval.config, with_eval)
    assert (kwargs["eval_strategy"], kwargs["eval_steps"]) == ("steps", 10)


def test_qlora_turns_gradient_checkpointing_on(files):
    kwargs = training_arguments_kwargs(*both(spec_of(files, method="qlora")), cuda=True)
    assert kwargs["gradient_checkpointing"] is True
    assert kwargs["gradient_checkpointing_kwargs"] == {"use_reentrant": False}


# --- the weighted loss and the collator ---------------------------------------------------------


def test_the_weighted_loss_equals_the_hand_computed_value():
    # Two tokens in the vocabulary. A logit pair (a, 0) gives the loss ln(1 + e^-a) for label 0 and
    # ln(1 + e^a) for label 1. Position t predicts label t + 1, so the first label is never scored.
    logits = torch.tensor([
        [[0.0, 0.0], [2.0, 0.0], [0.0, 0.0]],  # example 0: predicts labels 0 then 1
        [[1.0, 0.0], [0.0, 0.0], [5.0, 0.0]],  # example 1: predicts label 1, then padding
    ])
    labels = torch.tensor([[IGNORE_INDEX, 0, 1], [IGNORE_INDEX, 1, IGNORE_INDEX]])
    weights = torch.tensor([0.5, 2.0])
    example_0 = (math.log(2) + math.log(1 + math.exp(2))) / 2  # label 0 from (0, 0); label 1 from (2, 0)
    example_1 = math.log(1 + math.exp(1))  # one scored token: label 1 from (1, 0)
    expected = (0.5 * example_0 + 2.0 * example_1) / 2
    assert weighted_token_mean_loss(logits, labels, weights).item() == pytest.approx(expected, rel=1e-6)


def test_with_equal_weights_and_lengths_it_is_the_plain_token_mean():
    torch.manual_seed(0)
    logits, labels = torch.randn(3, 5, 7), torch.randint(0, 7, (3, 5))
    labels[:, 0] = IGNORE_INDEX
    plain = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, 7), labels[:, 1:].reshape(-1))
    assert weighted_token_mean_loss(logits, labels, torch.ones(3)).item() == pytest.approx(plain.item(), rel=1e-6)


def test_the_collator_pads_right_and_masks_the_padding():
    collate = PaddingCollator(pad_token_id=0, weighted=True)
    batch = collate([{"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "weight": 0.5},
                     {"input_ids": [8], "labels": [8], "weight": 1.0}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["weights"].tolist() == [0.5, 1.0]
    assert "weights" not in PaddingCollator(pad_token_id=0)([{"input_ids": [1], "labels": [1], "weight": 1.0}])


# --- events -------------------------------------------------------------------------------------


def test_an_event_is_one_marked_json_line_and_parses_back(capsys):
    emit(metrics_event(3, 0.5, {"loss": 1.25, "grad_norm": float("nan")}))
    line = capsys.readouterr().out
    assert line.startswith(EVENT_MARKER) and line.endswith("\n")
    event = parse_event_line(line.rstrip("\n"))
    assert event == {"type": "metrics", "step": 3, "epoch": 0.5, "loss": 1.25, "learning_rate": None,
                     "tokens_per_s": None, "samples_per_s": None, "eval_loss": None,
                     "grad_norm": None}  # NaN is not JSON: null


@pytest.mark.parametrize("line", ["{'loss': 1.0}", "ERRATA_EVENT not json", 'ERRATA_EVENT ["a"]', "ERRATA_EVENT {}"])
def test_other_stdout_lines_are_not_events(line):
    assert parse_event_line(line) is None


def test_only_the_main_process_emits(capsys, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    emit({"type": "log", "level": "info", "message": "from rank 1"})
    assert capsys.readouterr().out == ""


# --- the run folder -----------------------------------------------------------------------------


def test_the_newest_complete_checkpoint_skips_half_written_ones(tmp_path):
    for step, state in [(5, "{}"), (40, "{}"), (45, None), (50, '{"global_st')]:
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    (tmp_path / "checkpoint-notes").mkdir()
    assert newest_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-40"
    assert newest_complete_checkpoint(tmp_path / "missing") is None


def test_json_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "final" / "manifest.json"
    write_json_atomically(path, {"kind": "adapter"})
    assert json.loads(path.read_text()) == {"kind": "adapter"}
    monkeypatch.setattr("json.dump", lambda *args, **kwargs: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        write_json_atomically(path, {"kind": "model"})
    assert json.loads(path.read_text()) == {"kind": "adapter"}
    assert [p.name for p in path.parent.iterdir()] == ["manifest.json"]  # no temporary file left behind


# --- the launch -----------------------------------------------------------------------------------


def test_one_device_runs_the_runner_module_with_this_python(files):
    spec = spec_of(files)
    assert launch_command(spec) == [sys.executable, "-m", "gpu_worker.training", str(RunFolder(files["output"]).spec)]


def test_several_gpus_go_through_the_launcher_on_a_free_port(files):
    argv = launch_command(spec_of(files, devices=2, launcher="torchrun"))
    assert argv[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert argv[argv.index("--nproc_per_node") + 1] == "2"
    assert argv[argv.index("--master_port") + 1].isdigit()  # a free port: two runs on one machine never share one
    assert argv[-3:] == ["-m", "gpu_worker.training", str(files["output"] / "spec.json")]


def test_accelerate_with_zero_gets_the_deepspeed_config_as_a_file(files):
    files["output"].mkdir()
    argv = launch_command(spec_of(files, method="full", devices=2, deepspeed_stage=2, launcher="accelerate"))
    path = argv[argv.index("--deepspeed_config_file") + 1]
    assert json.loads(open(path).read())["zero_optimization"]["stage"] == 2


def test_the_runner_environment_is_offline_unbuffered_and_threaded_as_configured(files):
    env = runner_environment(spec_of(files, torch_threads=3), {"PATH": "/usr/bin"})
    assert (env["HF_HUB_OFFLINE"], env["PYTHONUNBUFFERED"], env["OMP_NUM_THREADS"]) == ("1", "1", "3")
    assert env["PATH"].endswith(":/usr/bin")
