"""Reads for teach: the feedback browser's filters, and per-teacher results of a run."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, Sum

from webapp.teach.models import Feedback


def feedback_search(params) -> QuerySet[Feedback]:
    rows = Feedback.objects.select_related("problem", "problem__dataset", "attempt", "run")
    if params.get("run", "").isdigit():
        rows = rows.filter(run_id=int(params["run"]))
    for field in ("method", "teacher_name"):
        if params.get(field):
            rows = rows.filter(**{field: params[field]})
    verdicts = {"parse_failed": Q(parse_ok=False), "check_passed": Q(auto_check=True), "check_failed": Q(auto_check=False),
                "accepted": Q(peer_accepted=True), "rejected": Q(peer_accepted=False)}
    if params.get("check") in verdicts:
        rows = rows.filter(verdicts[params["check"]])
    for word in params.get("q", "").split()[:10]:
        rows = rows.filter(Q(text__icontains=word) | Q(problem__question__icontains=word))
    return rows.order_by("problem__position", "teacher_name", "sample_index")


def teacher_results(run_id: int) -> list[dict]:
    """Per teacher: counts, acceptance by the automatic checks and by people, cost per accepted feedback."""
    rows = (Feedback.objects.filter(run_id=run_id).values("teacher_name")
            .annotate(total=Count("id"), parse_failures=Count("id", filter=Q(parse_ok=False)),
                      passed=Count("id", filter=Q(auto_check=True)), checked=Count("id", filter=Q(auto_check__isnull=False)),
                      accepted=Count("id", filter=Q(peer_accepted=True)), reviewed=Count("id", filter=Q(peer_accepted__isnull=False)),
                      approved=Count("reviews", filter=Q(reviews__decision__in=["approve", "edit"]), distinct=True),
                      decided=Count("reviews", filter=Q(reviews__decision__in=["approve", "edit", "reject"]), distinct=True),
                      cost=Sum("cost"))
            .order_by("teacher_name"))
    results = []
    for row in rows:
        good = row["passed"] or row["accepted"] or row["approved"]
        results.append({**row, "cost_per_accepted": float(row["cost"] or 0) / good if good else None,
                        "check_rate": _rate(row["passed"], row["checked"]), "peer_rate": _rate(row["accepted"], row["reviewed"]),
                        "human_rate": _rate(row["approved"], row["decided"])})
    return results


def _rate(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 1) if whole else None


def teacher_agreement(run_id: int) -> dict | None:
    """How often two teachers' automatic verdicts on the same mistake agree (FAIR: peer acceptance)."""
    from pipeline.agreement import agreement_summary

    decisions: dict = {}
    for row in Feedback.objects.filter(run_id=run_id, sample_index=0).values("attempt_id", "problem_id", "teacher_name",
                                                                             "auto_check", "peer_accepted"):
        verdict = row["auto_check"] if row["auto_check"] is not None else row["peer_accepted"]
        if verdict is not None:
            decisions.setdefault(row["attempt_id"] or row["problem_id"], {})[row["teacher_name"]] = verdict
    shared = {item: raters for item, raters in decisions.items() if len(raters) > 1}
    return agreement_summary(shared) if shared else None
