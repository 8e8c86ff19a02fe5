"""Reads for train: a set's preview as the model will see it, a run's loss curve, checkpoints."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

from pipeline.training.data import read_jsonl
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.runs.models import Run
from webapp.train.models import Checkpoint, TrainingSet, TrainMetric

logger = logging.getLogger(__name__)

CHART_WIDTH, CHART_HEIGHT, CHART_PAD = 640, 220, 30


def base_candidates():
    return ModelEndpoint.objects.filter(kind=EndpointKind.LOCAL, is_active=True).exclude(base_weights="")


@functools.lru_cache(maxsize=4)
def _tokenizer(weights: str):
    from transformers import AutoTokenizer

    from gpu_worker.smollm2 import resolve_weights  # the packaged demo model's converted folder

    return AutoTokenizer.from_pretrained(resolve_weights(weights))


def set_preview(training_set: TrainingSet, base: ModelEndpoint | None, max_length: int = 1024, show: int = 3) -> dict:
    """Counts, token lengths, truncation and a few examples rendered with ``base``'s chat template.

    Without a usable tokenizer (no local model, weights elsewhere) the preview says so and shows the raw rows.
    """
    from pipeline.training.tokens import preview

    examples = read_jsonl(training_set.train_file)
    if training_set.validation_file and Path(training_set.validation_file).exists():
        examples += read_jsonl(training_set.validation_file)
    rows = [example.to_json() for example in examples]
    if base is None:
        return {"tokenizer": None, "raw": rows[:show], "note": "No local model to tokenize with."}
    try:
        tokenizer = _tokenizer(base.base_weights)
    except Exception as error:  # noqa: BLE001 - any loading failure just means no rendered preview
        logger.warning("no tokenizer for %s: %s", base.name, error)
        return {"tokenizer": None, "raw": rows[:show],
                "note": f"Could not load {base.name}'s tokenizer here ({type(error).__name__}); showing the rows as stored."}
    shown = preview(rows, tokenizer, max_length, show=show)
    tallest = max([bin_["count"] for bin_ in shown["histogram"]] + [1])
    for bin_ in shown["histogram"]:
        bin_["percent"] = round(100 * bin_["count"] / tallest)
    return {"tokenizer": base.name, **shown}


def loss_chart(run: Run) -> dict:
    """SVG polylines of training and evaluation loss against step, scaled to the chart box."""
    metrics = list(TrainMetric.objects.filter(run=run).order_by("step").values_list("step", "loss", "eval_loss"))
    train = [(step, loss) for step, loss, _ in metrics if loss is not None]
    evals = [(step, loss) for step, _, loss in metrics if loss is not None]
    points = train + evals
    if not points:
        return {"empty": True}
    steps = [step for step, _ in points]
    losses = [loss for _, loss in points]
    x0, x1 = min(steps), max(max(steps), min(steps) + 1)
    y0, y1 = min(losses), max(max(losses), min(losses) + 1e-9)

    def scale(series):
        return " ".join(f"{CHART_PAD + (s - x0) / (x1 - x0) * (CHART_WIDTH - 2 * CHART_PAD):.1f},"
                        f"{CHART_HEIGHT - CHART_PAD - (v - y0) / (y1 - y0) * (CHART_HEIGHT - 2 * CHART_PAD):.1f}"
                        for s, v in series)

    return {"empty": False, "width": CHART_WIDTH, "height": CHART_HEIGHT, "pad": CHART_PAD,
            "train": scale(train), "eval": scale(evals), "first_step": x0, "last_step": max(steps),
            "low": y0, "high": y1, "last_loss": train[-1][1] if train else None,
            "last_eval": evals[-1][1] if evals else None, "first_loss": train[0][1] if train else None}


LOG_TAIL_BYTES = 8000


def worker_log_tail(run: Run) -> str:
    """The end of the training process's own log (kept in the run's folder), for the run page."""
    from webapp.train.runs import training_dir

    path = training_dir(run.pk) / "train.log"
    try:
        with path.open("rb") as handle:
            handle.seek(max(path.stat().st_size - LOG_TAIL_BYTES, 0))
            return handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def train_context(run: Run) -> dict:
    """What the run page shows for a training run."""
    return {"chart": loss_chart(run), "worker_log": worker_log_tail(run),
            "latest_metric": TrainMetric.objects.filter(run=run).order_by("-step").first(),
            "checkpoints": list(Checkpoint.objects.filter(run=run).select_related("endpoint")),
            "training_set": TrainingSet.objects.filter(pk=run.config.get("training_set")).first()}
