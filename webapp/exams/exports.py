"""An exam's final answers as a CSV or JSON download (the report page and the API serve the same files)."""

from __future__ import annotations

import csv

from django.http import HttpResponse, JsonResponse, StreamingHttpResponse

from pipeline.exams.selection import RULES
from webapp.exams.selectors import exam_results, export_rows
from webapp.runs.models import Run

COLUMNS = ["problem_id", "external_id", "dataset", "task", "question", "gold", "answer", "correct", "votes", "samples",
           "excluded", "contaminated", "guidance"]
LBT_COLUMNS = [f"{rule}_{part}" for rule in RULES for part in ("answer", "correct")]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMATS = ("csv", "json")


def _cell(value) -> object:
    """A spreadsheet must not run model output as a formula: such text gets a leading apostrophe."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


class _Lines:
    """A file-like object whose write returns the line, so csv.writer can feed a streaming response."""

    def write(self, line: str) -> str:
        return line


def csv_response(run: Run) -> StreamingHttpResponse:
    columns = COLUMNS + (LBT_COLUMNS if run.config.get("mode") == "lbt" else [])
    writer = csv.writer(_Lines())

    def lines():
        yield writer.writerow(columns)
        for row in export_rows(run):
            yield writer.writerow([_cell(row.get(column)) for column in columns])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="exam-{run.pk}.csv"'
    return response


def json_response(run: Run) -> JsonResponse:
    payload = {"run": {"id": run.pk, "name": run.name, "status": run.status, "config": run.config},
               **exam_results(run).as_json(), "answers": list(export_rows(run))}
    response = JsonResponse(payload, json_dumps_params={"ensure_ascii": False})
    response["Content-Disposition"] = f'attachment; filename="exam-{run.pk}.json"'
    return response


def export_response(run: Run, format: str) -> HttpResponse:
    if format == "json":
        return json_response(run)
    if format == "csv":
        return csv_response(run)
    return HttpResponse(f"unknown format {format!r}; choose csv or json", status=400, content_type="text/plain")
