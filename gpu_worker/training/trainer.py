"""The pieces Errata adds to the transformers Trainer: padding, FAIR's weighted loss, progress events and STOP."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainerCallback

from gpu_worker.training.events import checkpoint_event, emit, log_event, metrics_event, started_event
from gpu_worker.training.layout import RunFolder
from pipeline.training.tokens import IGNORE_INDEX, TokenizedExample


class SequenceDataset(torch.utils.data.Dataset):
    """Tokenized examples as the Trainer's data loader wants them, each with its loss weight."""

    def __init__(self, examples: Sequence[TokenizedExample], weights: Sequence[float]):
        self.examples, self.weights = list(examples), list(weights)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> dict:
        example = self.examples[index]
        return {"input_ids": example.input_ids, "labels": example.labels, "weight": self.weights[index]}


@dataclass
class PaddingCollator:
    """Right-pads a batch: input_ids with the pad token, labels with IGNORE_INDEX; ``weights`` when weighted."""

    pad_token_id: int
    weighted: bool = False

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        width = max(len(feature["input_ids"]) for feature in features)
        batch = {
            "input_ids": torch.tensor([_pad(f["input_ids"], width, self.pad_token_id) for f in features]),
            "attention_mask": torch.tensor([_pad([1] * len(f["input_ids"]), width, 0) for f in features]),
            "labels": torch.tensor([_pad(f["labels"], width, IGNORE_INDEX) for f in features]),
        }
        if self.weighted:
            batch["weights"] = torch.tensor([float(f["weight"]) for f in features])
        return batch


def _pad(values: list[int], width: int, filler: int) -> list[int]:
    return list(values) + [filler] * (width - len(values))


def weighted_token_mean_loss(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """FAIR's weighted loss: the mean over the batch of weight_i x (mean cross-entropy of example i's target tokens).

    Each example's tokens are averaged first, so a long rationale and a short feedback count by their
    weights, not by their lengths. Logits predict the next token: position t is scored against label t+1.
    """
    shifted_logits = logits[:, :-1, :].float()
    shifted_labels = labels[:, 1:]
    token_losses = F.cross_entropy(shifted_logits.transpose(1, 2), shifted_labels, ignore_index=IGNORE_INDEX,
                                   reduction="none")
    scored = (shifted_labels != IGNORE_INDEX).to(token_losses.dtype)
    per_example = (token_losses * scored).sum(dim=1) / scored.sum(dim=1).clamp(min=1)
    return (per_example * weights.to(per_example.dtype)).mean()


class WeightedLossTrainer(Trainer):
    """A Trainer whose loss weighs each example by its part (``config.loss_weights``)."""

    # The loss is a per-batch mean: the Trainer divides it by the accumulation steps itself.
    loss_is_scaled_for_ga = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)  # the Trainer reads the labels from its own dict after this call
        weights, labels = inputs.pop("weights"), inputs.pop("labels")
        outputs = model(**inputs)
        loss = weighted_token_mean_loss(outputs.logits, labels, weights)
        return (loss, outputs) if return_outputs else loss


class ProgressCallback(TrainerCallback):
    """Emits started, metrics and checkpoint events, and turns a STOP file into a save-and-stop."""

    def __init__(self, folder: RunFolder, *, examples: int, resumed_from: int | None):
        self.folder, self.examples, self.resumed_from = folder, examples, resumed_from
        self.stopped = False
        self.summary: dict = {}  # the Trainer's end-of-training log: train_loss, train_runtime, ...
        self.last_eval_loss: float | None = None
        self._clock = (time.monotonic(), 0, 0)  # (time, input tokens seen, step) at the last training log
        self._latest: tuple[int, dict] = (-1, {})  # values reported so far for the latest logged step

    def on_train_begin(self, args, state, control, **kwargs):
        self._clock = (time.monotonic(), state.num_input_tokens_seen, state.global_step)
        emit(started_event(total_steps=state.max_steps, examples=self.examples, resumed_from=self.resumed_from))
        if self.resumed_from is not None:
            emit(log_event(f"resuming from checkpoint-{self.resumed_from}"))

    def on_step_end(self, args, state, control, **kwargs):
        if _any_process(args, self.folder.stop_requested()):
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        emit(checkpoint_event(state.global_step, str(path)))

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "train_loss" in logs:
            self.summary = dict(logs)
        if "loss" not in logs and "eval_loss" not in logs:
            return
        step, values = self._latest
        values = dict(values) if step == state.global_step else {}
        if "loss" in logs:
            values.update({name: logs.get(name) for name in ("loss", "learning_rate", "grad_norm")})
            values.update(self._speeds(args, state))
        if "eval_loss" in logs:
            values["eval_loss"] = self.last_eval_loss = logs["eval_loss"]
        # A step logged twice (training, then evaluation) is reported again with everything known so far.
        self._latest = (state.global_step, values)
        emit(metrics_event(state.global_step, state.epoch, values))

    def _speeds(self, args, state) -> dict:
        now = time.monotonic()
        then, tokens_then, step_then = self._clock
        self._clock = (now, state.num_input_tokens_seen, state.global_step)
        seconds = now - then
        if seconds <= 0 or state.global_step <= step_then:
            return {}
        samples = (state.global_step - step_then) * args.train_batch_size * args.gradient_accumulation_steps \
            * args.world_size
        return {"tokens_per_s": (state.num_input_tokens_seen - tokens_then) / seconds, "samples_per_s": samples / seconds}


def _any_process(args, local: bool) -> bool:
    """True on every process when any of them saw STOP: all must save and stop at the same step."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return local
    flag = torch.tensor([int(local)], device=args.device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return bool(flag.item())
