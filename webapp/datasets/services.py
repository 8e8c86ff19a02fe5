"""Writes for datasets: create an import job, run it atomically and idempotently, add problems."""

from __future__ import annotations

import hashlib
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from pipeline.benchmarks import FORMATS, DatasetFormatError, ProblemRecord, load
from pipeline.scoring import default_scorer
from pipeline.splits import SplitRule, split_labels
from webapp.core.uploads import upload_save
from webapp.datasets.bulk import insert_problems
from webapp.datasets.models import Dataset, DatasetImport, ImportStatus

GENERIC_STEMS = {"train", "test", "dev", "eval", "validation", "data"}


class ImportRejected(ValueError):
    """An import that cannot start (bad options); the message is for the user."""


@dataclass(frozen=True)
class ImportOptions:
    dataset_name: str = ""
    format: str = ""
    split: SplitRule = SplitRule()
    license_note: str = ""

    @classmethod
    def from_fields(cls, *, dataset_name: str = "", format: str = "", split_rule: str = "auto", seed: int = 0,
                    test_fraction: float = 0.2, license_note: str = "", **_ignored) -> "ImportOptions":
        """From the flat fields a form, the API or the command line collect."""
        split = SplitRule(rule=split_rule, seed=seed, test_fraction=test_fraction)
        return cls(dataset_name=dataset_name, format=format or "", split=split, license_note=license_note)

    def as_json(self) -> dict:
        rule = self.split
        return {"split_rule": rule.rule, "seed": rule.seed, "test_fraction": rule.test_fraction, "license_note": self.license_note}


def question_hash(question: str) -> str:
    """Hash of the question with case and runs of whitespace ignored (finds the same problem twice)."""
    return hashlib.sha256(re.sub(r"\s+", " ", question).strip().lower().encode()).hexdigest()


def _check_options(options: ImportOptions) -> None:
    if options.format and options.format not in FORMATS:
        raise ImportRejected(f"unknown format {options.format!r}; known: {', '.join(sorted(FORMATS))}")
    if len(options.dataset_name) > 200:
        raise ImportRejected("dataset name is longer than 200 characters")


def _hash_files(paths: Sequence[Path]) -> tuple[str, int]:
    digest, total = hashlib.sha256(), 0
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode() + b"\x00")
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
                total += len(chunk)
    return digest.hexdigest(), total


def _save_uploads(files: Iterable[UploadedFile], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [upload_save(upload, folder) for upload in files]


def dataset_import_create(*, user, options: ImportOptions, uploads: Sequence[UploadedFile] = (),
                          paths: Sequence[Path] = ()) -> DatasetImport:
    """Record an import of uploaded files (copied to the upload folder) or of files already on disk."""
    _check_options(options)
    if not uploads and not paths:
        raise ImportRejected("choose at least one file to import")
    upload_dir = ""
    if uploads:
        folder = Path(settings.ERRATA_UPLOAD_DIR) / uuid.uuid4().hex
        paths, upload_dir = _save_uploads(uploads, folder), str(folder)
    paths = [Path(p).resolve() for p in paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise ImportRejected(f"no such file: {', '.join(missing)}")
    files = [f for p in paths for f in (sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p])]
    sha, size = _hash_files(files)
    return DatasetImport.objects.create(
        dataset_name=options.dataset_name.strip(), format=options.format, options=options.as_json(),
        file_names=[str(p) for p in paths], upload_dir=upload_dir, content_sha256=sha, total_bytes=size,
        created_by=user,
    )


def _claim(import_id: int) -> bool:
    # A redelivered task (its worker died) may claim a RUNNING import again: the write is one
    # transaction and problems are unique per dataset, so running twice cannot duplicate rows.
    claimed = DatasetImport.objects.filter(
        pk=import_id, status__in=[ImportStatus.QUEUED, ImportStatus.RUNNING]
    ).update(status=ImportStatus.RUNNING, started_at=timezone.now(), phase="reading files", error="")
    return claimed == 1


def _progress(job: DatasetImport, **fields) -> None:
    DatasetImport.objects.filter(pk=job.pk).update(**fields)


def _default_name(job: DatasetImport, detected_format: str) -> str:
    paths = [Path(p) for p in job.file_names]
    if len(paths) == 1 and paths[0].is_file():
        stem = paths[0].stem
        return f"{detected_format} {stem}" if stem.lower() in GENERIC_STEMS else stem
    if len(paths) == 1:
        return paths[0].name
    return detected_format


def dataset_import_run(*, import_id: int) -> DatasetImport:
    """Run one import: read and check every record first, then write them all in one transaction."""
    if not _claim(import_id):
        return DatasetImport.objects.get(pk=import_id)
    job = DatasetImport.objects.get(pk=import_id)
    try:
        loaded = load([Path(p) for p in job.file_names], format=job.format or None)
        _progress(job, detected_format=loaded.format, records_read=len(loaded.records), phase="writing problems")
        options = job.options
        rule = ImportOptions.from_fields(**options).split
        records = loaded.records
        dataset, added = problems_add(
            name=job.dataset_name or _default_name(job, loaded.format), benchmark=loaded.benchmark,
            answer_format=loaded.answer_format, records=records, splits=split_labels(records, rule), user=job.created_by,
            source=", ".join(Path(p).name for p in job.file_names), split_rule=options,
            license_note=options.get("license_note", ""),
        )
    except (DatasetFormatError, ImportRejected, ValueError) as error:
        _finish(job, status=ImportStatus.FAILED, error=str(error))
    else:
        _finish(job, status=ImportStatus.SUCCEEDED, dataset=dataset, problems_added=added,
                problems_skipped=len(records) - added)
    job.refresh_from_db()
    return job


def _finish(job: DatasetImport, **fields) -> None:
    _progress(job, finished_at=timezone.now(), phase="", **fields)
    if job.upload_dir:
        shutil.rmtree(job.upload_dir, ignore_errors=True)


@transaction.atomic
def problems_add(*, name: str, benchmark: str, answer_format: str, records: Sequence[ProblemRecord],
                 splits: Sequence[str] | None = None, user=None, source: str = "", split_rule: dict | None = None,
                 license_note: str = "") -> tuple[Dataset, int]:
    """Add ``records`` to the dataset ``name`` (created if new); problems it already has are skipped.

    ``splits`` gives each record's split; without it the records' own ``split`` fields are used.
    """
    dataset, created = Dataset.objects.select_for_update().get_or_create(
        name=name,
        defaults=dict(benchmark=benchmark, answer_format=answer_format, scorer=default_scorer(benchmark),
                      source=source, split_rule=split_rule or {}, license_note=license_note, created_by=user),
    )
    if not created and dataset.benchmark != benchmark:
        raise ImportRejected(f"dataset {name!r} holds {dataset.benchmark} problems, this file is {benchmark}")
    before = dataset.problems.count()
    start = dataset.problems.aggregate(top=Max("position"))["top"] or 0
    splits = splits if splits is not None else [record.split for record in records]
    insert_problems(
        _problem_row(dataset.pk, record, split, start + offset)
        for offset, (record, split) in enumerate(zip(records, splits, strict=True), start=1)
    )
    return dataset, dataset.problems.count() - before


def _problem_row(dataset_id: int, record: ProblemRecord, split: str, position: int) -> tuple:
    """One row in ``bulk.COLUMNS`` order."""
    return (
        dataset_id, record.external_id, position, split, record.task, record.question, list(record.choices),
        record.gold_answer, record.gold_rationale, record.metadata, question_hash(record.question),
    )
