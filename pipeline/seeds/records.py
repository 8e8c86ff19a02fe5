"""A seed file as Errata's problems and attempts, and what each record keeps to be written back exactly.

Every seed record is rendered from the model when written: its prompt from the attempt, its gold from
the problem, and so on. When read, a record keeps in its first attempt's metadata only what that
rendering would not give back: under ``seed_fields`` the fields Errata does not model (SALAM's
``task_idx``, FAIR's teacher feedback...) and the raw value of any modelled field that the model would
write differently (a gold "145.0" read as "145"); under ``seed_keys`` its key order, when that is not the
format's own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.fields import json_kind
from pipeline.benchmarks.reading import Item, SourceFile
from pipeline.benchmarks.records import ProblemRecord

SEED_FIELDS = "seed_fields"
SEED_KEYS = "seed_keys"


@dataclass
class SeedBundle:
    """A seed file's problems and the student's attempts on them, with the seed's own labels.

    ``extra`` holds the file-level things needed to write the file back (``json_layout``, SALAM's task
    order...); Errata's own re-score of an attempt, if one is computed, belongs in its metadata.
    """

    format: str
    benchmark: str
    problems: list[ProblemRecord]
    attempts: list[AttemptRecord]
    extra: dict[str, Any] = field(default_factory=dict)


def same_json(first: Any, second: Any) -> bool:
    """Equal as JSON text: 1, 1.0 and true differ, and so does key order."""
    return json.dumps(first) == json.dumps(second)


def record_keys(canonical: Sequence[str], values: dict[str, Any], kept: dict[str, Any]) -> list[str]:
    """The keys a written record has: the format's own order, then the fields only the seed had."""
    return [key for key in canonical if key in values] + [key for key in kept if key not in canonical]


def kept_metadata(raw: dict[str, Any], values: dict[str, Any], canonical: Sequence[str],
                  filled: Iterable[str] = ()) -> dict[str, Any]:
    """What a record must keep beyond ``values`` (what the writer would render) to be written back as ``raw``.

    ``filled`` names the fields the writer fills with a default when the record does not keep them.
    """
    kept = {key: value for key, value in raw.items() if key not in values or not same_json(values[key], value)}
    metadata: dict[str, Any] = {SEED_FIELDS: kept} if kept else {}
    if list(raw) != record_keys(canonical, {**dict.fromkeys(filled), **values, **kept}, kept):
        metadata[SEED_KEYS] = list(raw)
    return metadata


def compose(canonical: Sequence[str], values: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """A record from rendered ``values`` overlaid by what the seed kept, in the seed's key order."""
    kept = metadata.get(SEED_FIELDS, {})
    merged = {**values, **kept}
    keys = metadata.get(SEED_KEYS) or record_keys(canonical, merged, kept)
    return {key: merged[key] for key in keys if key in merged}


def own_metadata(attempt: AttemptRecord, own_format: bool) -> dict[str, Any]:
    """The kept fields and key order, only when writing the format the bundle was read from."""
    if not own_format:
        return {}
    return {key: attempt.metadata[key] for key in (SEED_FIELDS, SEED_KEYS) if key in attempt.metadata}


def record_list(source: SourceFile, data: Any, shape: str) -> list[Item]:
    """The items of a non-empty JSON array of objects, numbered from 1."""
    if not isinstance(data, list):
        raise source.error(f"expected {shape}, got {json_kind(data)}")
    if not data:
        raise source.error("file holds an empty JSON array")
    items = [Item(value, source, number, record=number) for number, value in enumerate(data, start=1)]
    for item in items:
        if not isinstance(item.value, dict):
            raise item.error(f"expected a JSON object, got {json_kind(item.value)}")
    return items


def check_unique(seen: dict[str, Item], external_id: str, item: Item, id_field: str) -> None:
    first = seen.setdefault(external_id, item)
    if first is not item:
        raise item.error(f"duplicate id {external_id!r}: {first.place()} has the same id", field=id_field)


def problems_by_id(problems: Iterable[ProblemRecord]) -> dict[str, ProblemRecord]:
    return {problem.external_id: problem for problem in problems}


def problem_of(problems: dict[str, ProblemRecord], attempt: AttemptRecord) -> ProblemRecord:
    try:
        return problems[attempt.problem_external_id]
    except KeyError:
        raise ValueError(f"attempt on problem {attempt.problem_external_id!r}, which the bundle lacks") from None

