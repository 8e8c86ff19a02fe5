"""Writes for the seeds' answer files: import one as a dataset plus a finished gather run, export a run back."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from django.db import transaction
from django.utils import timezone

from pipeline.seeds import SEED_FORMATS, SeedBundle, read_seed_file, write_seed_file
from webapp.core.uploads import file_sha256, upload_on_disk
from webapp.datasets.models import Problem
from webapp.datasets.services import problems_add
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunKind, RunStatus

ANSWER_FORMATS = {"bbh": "multiple_choice", "bbq": "multiple_choice", "aqua": "multiple_choice", "csqa": "multiple_choice",
                  "logiqa": "multiple_choice", "strategyqa": "boolean", "math": "math"}


class SeedImportError(ValueError):
    """A seed file that cannot be imported; the message says why."""



class SeedUploaded(NamedTuple):
    run: Run
    already: bool  # imported before: nothing added


def seed_import_upload(*, upload, **options) -> SeedUploaded:
    """An uploaded file (the page's or the API's) imported as ``seed_import`` imports a file on disk; raises
    DatasetFormatError or SeedImportError for a bad file, adding nothing."""
    with upload_on_disk(upload) as path:
        already = imported_seed_run(path) is not None
        return SeedUploaded(seed_import(path=path, **options), already)


def imported_seed_run(path: str | Path) -> Run | None:
    """The gather run an earlier import of this exact file made, if any."""
    return _earlier_run(file_sha256(Path(path)))


def _earlier_run(digest: str) -> Run | None:
    return Run.objects.filter(kind=RunKind.GATHER, config__imported__sha256=digest).first()


def seed_import(*, path: Path, format: str | None = None, dataset_name: str = "", model_name: str = "",
                split: str = "train", user=None) -> Run:
    """The file's problems join a dataset and its answers become a finished gather run, labelled as the seed
    labelled them. Importing the same file again returns the run made the first time."""
    path = Path(path)
    digest = file_sha256(path)
    earlier = _earlier_run(digest)
    if earlier is not None:
        return earlier
    bundle = read_seed_file(path, format)
    splits = [problem.split or split for problem in bundle.problems]
    with transaction.atomic():
        dataset, _ = problems_add(
            name=dataset_name or f"{bundle.format} {path.stem}", benchmark=bundle.benchmark,
            answer_format=ANSWER_FORMATS.get(bundle.benchmark, "number"), records=bundle.problems, splits=splits,
            user=user, source=path.name, split_rule={"split_rule": "file", "seed_format": bundle.format},
        )
        run = _imported_run(bundle, path, digest, dataset, model_name, user)
        _add_attempts(run, bundle, dataset, model_name or bundle.extra.get("student_model", "imported"))
    return run


def _imported_run(bundle: SeedBundle, path: Path, digest: str, dataset, model_name: str, user) -> Run:
    now = timezone.now()
    right = sum(attempt.correct for attempt in bundle.attempts)
    return Run.objects.create(
        kind=RunKind.GATHER, name=f"Imported {path.name}", status=RunStatus.SUCCEEDED, created_by=user,
        config={"dataset_id": dataset.pk, "imported": {"format": bundle.format, "file": path.name, "sha256": digest,
                                                       "model_name": model_name, "extra": bundle.extra}},
        started_at=now, finished_at=now, progress_done=len(bundle.attempts), progress_total=len(bundle.attempts),
        counts={"correct": right, "wrong": len(bundle.attempts) - right},
    )


def _add_attempts(run: Run, bundle: SeedBundle, dataset, model_name: str) -> None:
    problem_ids = dict(Problem.objects.filter(dataset=dataset).values_list("external_id", "pk"))
    missing = {a.problem_external_id for a in bundle.attempts} - set(problem_ids)
    if missing:
        raise SeedImportError(f"answers to problems the file does not define: {', '.join(sorted(missing)[:5])}")
    Attempt.objects.bulk_create([
        Attempt(run=run, problem_id=problem_ids[a.problem_external_id], model_name=model_name, sample_index=a.sample_index,
                round=a.round, guidance=a.guidance, prompt=a.prompt, raw_output=a.output, extracted=a.extracted,
                correct=a.correct, scorer=f"seed:{bundle.format}", metadata=a.metadata)
        for a in bundle.attempts
    ])


def seed_bundle(*, run: Run, format: str) -> SeedBundle:
    """A gather run's problems and answers as a bundle of the seed format ``format``."""
    if format not in SEED_FORMATS:
        raise SeedImportError(f"unknown seed format {format!r}; known: {', '.join(sorted(SEED_FORMATS))}")
    attempts = list(run.attempts.select_related("problem").order_by("problem__position", "round", "sample_index"))
    if not attempts:
        raise SeedImportError(f"run #{run.pk} has no answers to export")
    problems = list({attempt.problem_id: attempt.problem for attempt in attempts}.values())
    imported = run.config.get("imported", {})
    return SeedBundle(
        format=format, benchmark=problems[0].dataset.benchmark, problems=[p.as_record() for p in problems],
        attempts=[a.as_record() for a in attempts],
        extra=imported.get("extra", {}) if imported.get("format") == format else {},
    )


def seed_export(*, run: Run, format: str, path: Path) -> Path:
    write_seed_file(seed_bundle(run=run, format=format), path, format)
    return path
