"""Launch a training run from a JSON file: the set (or how to build it), the base model, a preset and overrides.

    {"name": "salam assistant", "training_set": 3, "base": "SmolLM2 (demo)", "preset": "cpu-lora-smollm2",
     "config": {"max_steps": 40}, "auto_register": true}

Instead of "training_set", {"build": {"queue": 2, "target": "salam_assistant"}} builds one first (or
{"build": {"gather_run": 5}} for a GSI iteration). With --wait it follows the run and prints the loss.
"""

import json
import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from pipeline.training.config import PRESETS
from webapp.endpoints.models import ModelEndpoint
from webapp.review.models import ReviewQueue
from webapp.runs.models import Run, RunKind
from webapp.train.models import TrainingSet, TrainMetric
from webapp.train.runs import TrainLaunchError, train_launch
from webapp.train.sets import TrainingSetError, training_set_from_gather, training_set_from_queue

KEYS = {"name", "training_set", "build", "base", "preset", "config", "auto_register"}


class Command(BaseCommand):
    help = "Launch a training run described by CONFIG.json (see the module's docstring); --wait follows it."

    def add_arguments(self, parser):
        parser.add_argument("config", help="The run's JSON file.")
        parser.add_argument("--wait", action="store_true", help="Print the loss as it comes until the run ends.")

    def handle(self, *args, config, wait, **options):
        spec = _read(Path(config))
        training_set = _training_set(spec)
        base = ModelEndpoint.objects.filter(name=spec.get("base")).first() or ModelEndpoint.objects.filter(
            pk=spec.get("base") if isinstance(spec.get("base"), int) else None).first()
        if base is None:
            raise CommandError(f"base: no model endpoint named or numbered {spec.get('base')!r}")
        preset = spec.get("preset")
        if preset is not None and preset not in PRESETS:
            raise CommandError(f"preset: {preset!r} is not one of {', '.join(PRESETS)}")
        overrides = spec.get("config", {})
        if not isinstance(overrides, dict):
            raise CommandError("config: expected an object of training settings")
        try:
            run = train_launch(user=None, training_set=training_set, base=base, name=spec.get("name", ""),
                               config={**(PRESETS[preset] if preset else {}), **overrides},
                               auto_register=bool(spec.get("auto_register", True)))
        except TrainLaunchError as error:
            raise CommandError(f"not launched: {error}") from None
        self.stdout.write(f"Training run #{run.pk} queued: {run.name}")
        if wait:
            self._follow(run)

    def _follow(self, run: Run) -> None:
        shown = -1
        while True:
            run.refresh_from_db()
            for metric in TrainMetric.objects.filter(run=run, step__gt=shown).order_by("step"):
                self.stdout.write(f"step {metric.step}: loss {metric.loss} eval {metric.eval_loss}")
                shown = metric.step
            if run.is_finished:
                break
            time.sleep(1)
        self.stdout.write(f"Run #{run.pk} {run.status}{': ' + run.error if run.error else ''}")
        if run.status != "succeeded":
            raise CommandError(f"run #{run.pk} {run.status}")


def _read(path: Path) -> dict:
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot read {path}: {error}") from None
    if not isinstance(spec, dict):
        raise CommandError(f"{path}: expected a JSON object")
    unknown = set(spec) - KEYS
    if unknown:
        raise CommandError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(KEYS)}")
    return spec


def _training_set(spec: dict) -> TrainingSet:
    if "training_set" in spec:
        found = TrainingSet.objects.filter(pk=spec["training_set"] if isinstance(spec["training_set"], int) else None).first()
        if found is None:
            raise CommandError(f"training_set: no training set #{spec['training_set']}")
        return found
    build = spec.get("build")
    if not isinstance(build, dict):
        raise CommandError('give "training_set": ID or "build": {"queue": ID, "target": ...} / {"gather_run": ID}')
    name = spec.get("name") or "training set"
    try:
        if "queue" in build:
            queue = ReviewQueue.objects.filter(pk=build["queue"]).first()
            if queue is None:
                raise CommandError(f"build.queue: no review queue #{build['queue']}")
            return training_set_from_queue(name=name, queue=queue, target=build.get("target", "salam_assistant"),
                                           rule=build.get("rule", "majority"), cot_ratio=build.get("cot_ratio", 0.0))
        run = Run.objects.filter(pk=build.get("gather_run"), kind=RunKind.GATHER).first()
        if run is None:
            raise CommandError(f"build.gather_run: no gather run #{build.get('gather_run')}")
        return training_set_from_gather(name=name, run=run)
    except TrainingSetError as error:
        raise CommandError(f"no training set built: {error}") from None
