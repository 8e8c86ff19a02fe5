"""What each method asks the teachers and how their replies become Feedback fields (SALAM, LEMA, FAIR, GSI, LbT)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING

from django.db.models import Count, Q

from pipeline import teaching
from pipeline.guidance import GuidanceConfig, guided_messages
from pipeline.models import ChatRequest
from pipeline.prompts import PromptConfig, student_messages
from pipeline.scoring import score
from webapp.runs.models import RunEvent
from webapp.runs.services import run_ask, run_log
from webapp.teach.models import Feedback
from webapp.teach.templates_store import as_text

if TYPE_CHECKING:
    from webapp.teach.services import Source

# The stored templates each method uses, the first being the one a Feedback row records.
TEMPLATES = {
    "salam": ("salam_feedback",),
    "lema": ("lema_correction_hinted", "lema_correction"),
    "fair": ("fair_feedback", "fair_rationale", "fair_peer_review"),
    "gsi": (),
    "lbt": ("lbt_rationale",),
}


def recorded_template(method: str, templates):
    """The stored template a Feedback row names (GSI's help prompt is not a stored template)."""
    names = TEMPLATES[method]
    return templates.get(names[0]) if names else None


def _template(templates, name):
    return as_text(templates[name]) if templates and name in templates else None


def requests_per_writer(method: str, teachers: int) -> int:
    """Requests one teacher makes per source: FAIR writes feedback and a rationale, then reviews the others'."""
    return 2 + (teachers - 1) if method == "fair" else 1


def writer_messages(config, source: "Source", templates) -> list[list[dict]]:
    """The conversations one teacher is sent for one source (FAIR: feedback and rationale)."""
    record, wrong, method = source.record, source.wrong, config.method
    if method == "salam":
        return [teaching.salam_feedback_messages(record, wrong, _template(templates, "salam_feedback"))]
    if method == "lema":
        name = "lema_correction_hinted" if config.hint_answer else "lema_correction"
        return [teaching.lema_correction_messages(record, wrong, _template(templates, name),
                                                  hint_answer=record.gold_answer if config.hint_answer else None)]
    if method == "fair":
        return [teaching.fair_feedback_messages(record, wrong, _template(templates, "fair_feedback")),
                teaching.fair_rationale_messages(record, _template(templates, "fair_rationale"))]
    if method == "gsi":
        return [teaching.gsi_help_messages(record, wrong)]
    return [teaching.lbt_rationale_messages(record, _template(templates, "lbt_rationale"))]


def _scorer(source: "Source") -> str:
    return source.problem.dataset.scorer


def interpret(config, source: "Source", texts: list[str]) -> dict:
    """Feedback fields from the teacher's replies (one text per conversation of ``writer_messages``)."""
    method, record = config.method, source.record
    if method == "salam":
        parsed = teaching.parse_salam_feedback(texts[0])
        fields = {"reason": parsed.reason, "guideline": parsed.guideline}
        return {"fields": fields, "text": json.dumps(fields), "parse_ok": parsed.ok, "parse_error": parsed.error}
    if method == "lema":
        parsed = teaching.parse_lema_correction(texts[0])
        checked = parsed.ok and teaching.lema_auto_check(parsed, record.gold_answer, record.choices, _scorer(source))
        fields = {"incorrect_step": parsed.incorrect_step, "explanation": parsed.explanation,
                  "corrected_solution": parsed.corrected_solution, "corrected_answer": parsed.corrected_answer}
        return {"fields": fields, "text": texts[0].strip(), "parse_ok": parsed.ok, "parse_error": parsed.error,
                "corrected_answer": parsed.corrected_answer or "", "auto_check": checked if parsed.ok else None}
    if method == "fair":
        feedback, rationale = teaching.parse_fair_feedback(texts[0]), teaching.parse_fair_rationale(texts[1])
        error = "; ".join(e for e in (feedback.error, rationale.error) if e)
        return {"fields": {"feedback": feedback.text, "rationale": rationale.text}, "text": feedback.text,
                "parse_ok": feedback.ok and rationale.ok, "parse_error": error}
    if method == "gsi":
        parsed = teaching.parse_gsi_help(texts[0])
        return {"fields": {"correction": parsed.text}, "text": parsed.text, "parse_ok": parsed.ok, "parse_error": parsed.error}
    parsed = teaching.parse_lbt_rationale(texts[0])
    right = parsed.ok and score(_scorer(source), texts[0], record.gold_answer, record.choices).correct
    return {"fields": {"rationale": parsed.rationale, "answer": parsed.answer}, "text": texts[0].strip(),
            "parse_ok": parsed.ok, "parse_error": parsed.error, "corrected_answer": parsed.answer,
            "auto_check": right if parsed.ok else None}


def fair_peer_review(run, config, chunk, teachers, templates, failures) -> None:
    """Each teacher's rationale is scored 1-5 by every other teacher; accepted when the valid scores' mean > 3."""
    rows = list(Feedback.objects.filter(run=run, problem__in=[s.problem for s in chunk], method="fair", parse_ok=True))
    for reviewer in teachers:
        todo = [row for row in rows if row.teacher_name != reviewer.name and reviewer.name not in row.peer_scores]
        if not todo:
            continue
        requests = [ChatRequest(messages=teaching.fair_peer_review_messages(
            row.problem.as_record(), row.fields.get("rationale", ""), _template(templates, "fair_peer_review")), key=f"review:{row.pk}")
            for row in todo]
        for row, result in zip(todo, run_ask(run_id=run.pk, endpoint=reviewer, requests=requests, use_cache=config.use_cache)):
            if not result.ok:
                failures.append(result.error)
                run_log(run_id=run.pk, level=RunEvent.Level.WARNING, message=f"{reviewer.name} reviewing: {result.error}")
                continue
            row.peer_scores[reviewer.name] = teaching.parse_peer_score(result.texts[0])
            row.cost += Decimal(str(round(result.cost, 6)))
    for row in rows:
        expected = len(teachers) - 1
        if len(row.peer_scores) >= expected:
            scores = list(row.peer_scores.values())
            row.peer_mean, row.peer_accepted = teaching.mean_peer_score(scores), teaching.fair_accepts(scores)
    Feedback.objects.bulk_update(rows, ["peer_scores", "peer_mean", "peer_accepted", "cost"])


def gsi_student_revisions(run, config, chunk, failures) -> None:
    """GSI teacher help: the student who made the mistake revises with the teacher's correction; scored."""
    rows = [row for row in Feedback.objects.filter(run=run, problem__in=[s.problem for s in chunk], method="gsi",
                                                   parse_ok=True).select_related("attempt__endpoint", "problem__dataset")
            if "revision" not in row.fields and row.attempt and row.attempt.endpoint]
    by_student: dict = {}
    for row in rows:
        by_student.setdefault(row.attempt.endpoint, []).append(row)
    for student, todo in by_student.items():
        requests = [ChatRequest(messages=_revision_messages(row), key=f"revise:{row.pk}") for row in todo]
        for row, result in zip(todo, run_ask(run_id=run.pk, endpoint=student, requests=requests, use_cache=config.use_cache)):
            if not result.ok:
                failures.append(result.error)
                continue
            verdict = score(row.problem.dataset.scorer, result.texts[0], row.problem.gold_answer, row.problem.choices)
            row.fields = {**row.fields, "revision": result.texts[0], "revision_extracted": verdict.extracted}
            row.corrected_answer, row.auto_check = verdict.extracted or "", verdict.correct
        Feedback.objects.bulk_update(todo, ["fields", "corrected_answer", "auto_check"])


def _revision_messages(row: Feedback) -> list[dict]:
    record = row.problem.as_record()
    base = student_messages(record, PromptConfig())
    return guided_messages(record, base, "teacher_help", GuidanceConfig(), previous_wrong=row.attempt.as_record(),
                           teacher_correction=row.text)


def per_teacher_counts(feedback) -> dict:
    """Per teacher: feedback, parse failures, automatic checks passed and failed, peer-accepted."""
    rows = feedback.values("teacher_name").annotate(
        total=Count("id"), parse_failures=Count("id", filter=Q(parse_ok=False)),
        passed=Count("id", filter=Q(auto_check=True)), failed=Count("id", filter=Q(auto_check=False)),
        accepted=Count("id", filter=Q(peer_accepted=True)))
    return {row.pop("teacher_name"): row for row in rows}
