"""The `python -m pipeline` commands: score JSONL answers, and check a seed file's labels against its own rule."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from pipeline.benchmarks.records import DatasetFormatError
from pipeline.labels import FORMATS, MAX_EXAMPLES, check_labels
from pipeline.scoring import SCORERS, UnknownScorer, default_scorer, score

EXIT_BAD_INPUT = 2  # the same code argparse uses for a bad command line


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code; bad input is reported on stderr with exit code 2."""
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except DatasetFormatError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except UnicodeDecodeError as error:
        print(f"error: {args.file}: not UTF-8 text ({error.reason} at byte {error.start})", file=sys.stderr)
        return EXIT_BAD_INPUT


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    score_parser = commands.add_parser(
        "score", help="score JSONL answers: {benchmark, gold, output, choices?} per line",
        description="Read JSONL records {benchmark, gold, output, choices?} and print them with "
                    "'extracted' and 'correct' added, or one summary object with --summary.")
    score_parser.add_argument("file", metavar="FILE", help="JSONL file, or - for stdin")
    score_parser.add_argument("--scorer", metavar="NAME", help="scorer for every record (default: the "
                              "benchmark's default scorer); one of " + ", ".join(sorted(SCORERS)))
    score_parser.add_argument("--summary", action="store_true",
                              help='print only {"records", "correct", "accuracy"}')
    score_parser.set_defaults(run=run_score)

    check_parser = commands.add_parser(
        "check-labels", help="re-score a labelled seed file with its own rule and count agreement",
        description="Re-score every record of a SALAM collection or status.json, or a FAIR *_round0.json, "
                    "with that seed's own scoring rule and compare with the seed's labels.")
    check_parser.add_argument("file", metavar="FILE", help="seed file with labels")
    check_parser.add_argument("--format", choices=FORMATS, help="skip detection and read FILE as this format")
    check_parser.add_argument("--scorer", metavar="NAME",
                              help="re-score with this scorer instead of the seed's own rule")
    check_parser.add_argument("--examples", type=int, default=MAX_EXAMPLES, metavar="N",
                              help=f"how many disagreeing records to show (default {MAX_EXAMPLES})")
    check_parser.set_defaults(run=run_check_labels)
    return parser


def run_score(args: argparse.Namespace) -> int:
    _require_known_scorer(args.scorer)
    with _open_text(args.file) as lines:
        records = scored_records(lines, source=_source_name(args.file), scorer=args.scorer)
        if args.summary:
            print(json.dumps(summarise(records)))  # consumes every record before printing anything
        else:
            for record in records:
                sys.stdout.write(json.dumps(record) + "\n")
    return 0


def run_check_labels(args: argparse.Namespace) -> int:
    _require_known_scorer(args.scorer)
    print(json.dumps(check_labels(args.file, seed_format=args.format, scorer=args.scorer,
                                  max_examples=args.examples), indent=2))
    return 0


def scored_records(lines: Iterable[str], *, source: str, scorer: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield each JSONL record with `extracted` and `correct` added; raise DatasetFormatError on a bad line."""
    for line_number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        record = _parse_record(line, source=source, line_number=line_number, needs_benchmark=scorer is None)
        scorer_name = scorer or _benchmark_scorer(record["benchmark"], source=source, line_number=line_number)
        try:
            result = score(scorer_name, record["output"], record["gold"], tuple(record.get("choices") or ()))
        except (UnknownScorer, ValueError) as error:
            raise DatasetFormatError(f"cannot score with {scorer_name!r}: {error}",
                                     path=source, line=line_number) from None
        yield {**record, "extracted": result.extracted, "correct": result.correct}


def summarise(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Count records and correct ones; accuracy is None when there are no records."""
    total = correct = 0
    for record in records:
        total += 1
        correct += bool(record["correct"])
    return {"records": total, "correct": correct, "accuracy": round(correct / total, 4) if total else None}


def _parse_record(line: str, *, source: str, line_number: int, needs_benchmark: bool) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as error:
        raise DatasetFormatError(f"invalid JSON ({error.msg}, column {error.colno})",
                                 path=source, line=line_number) from None
    if not isinstance(record, dict):
        raise DatasetFormatError("expected a JSON object", path=source, line=line_number)
    required = ("benchmark", "gold", "output") if needs_benchmark else ("gold", "output")
    for field in required:
        if field not in record:
            raise DatasetFormatError("missing field", path=source, line=line_number, field=field)
    record["gold"] = _as_text(record["gold"], source=source, line_number=line_number, field="gold")
    record["output"] = _as_text(record["output"], source=source, line_number=line_number, field="output")
    choices = record.get("choices") or []
    if not isinstance(choices, list) or not all(isinstance(choice, str) for choice in choices):
        raise DatasetFormatError("expected a list of strings", path=source, line=line_number, field="choices")
    return record


def _as_text(value: Any, *, source: str, line_number: int, field: str) -> str:
    # A JSONL gold of 18 means "18"; anything but text or a number is a mistake in the file.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise DatasetFormatError(f"expected text, got {type(value).__name__}",
                                 path=source, line=line_number, field=field)
    return value


def _benchmark_scorer(benchmark: Any, *, source: str, line_number: int) -> str:
    try:
        return default_scorer(str(benchmark))
    except (UnknownScorer, KeyError, ValueError):
        raise DatasetFormatError(f"unknown benchmark {benchmark!r}; pass --scorer NAME",
                                 path=source, line=line_number, field="benchmark") from None


def _require_known_scorer(name: str | None) -> None:
    if name is not None and name not in SCORERS:
        raise DatasetFormatError(f"unknown scorer {name!r}; known scorers: {', '.join(sorted(SCORERS))}")


@contextmanager
def _open_text(path: str) -> Iterator[TextIO]:
    """Yield the file (or stdin for "-") as lines, read one at a time."""
    if path == "-":
        yield sys.stdin
        return
    try:
        handle = open(path, encoding="utf-8")
    except OSError as error:
        raise DatasetFormatError(error.strerror or "cannot open", path=path) from None
    with handle:
        yield handle


def _source_name(path: str) -> str:
    return "<stdin>" if path == "-" else path
