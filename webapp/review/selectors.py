"""Reads for review: which feedback a queue takes, progress, agreement, approved items, the word diff of an edit."""

from __future__ import annotations

import difflib
import re
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum

from pipeline.agreement import agreement_summary, cohen_kappa
from pipeline.exports import ApprovedItem, no_wrong_answer
from webapp.review.models import Decision, Review, ReviewQueue
from webapp.teach.imports import IMPORTED
from webapp.teach.models import Feedback, Method

DECIDED = (Decision.APPROVE, Decision.EDIT, Decision.REJECT)
ACCEPT, REJECT = "accept", "reject"

# Named filters for researchers' bulk decisions: name -> (label, condition on a Review).
BULK_FILTERS: dict[str, tuple[str, Q]] = {
    "auto_check_passed": ("Corrected answer matches gold", Q(feedback__auto_check=True)),
    "auto_check_failed": ("Corrected answer differs from gold", Q(feedback__auto_check=False)),
    "peer_accepted": ("Accepted by peer review", Q(feedback__peer_accepted=True)),
    "peer_rejected": ("Rejected by peer review", Q(feedback__peer_accepted=False)),
    "parse_failed": ("Teacher output did not parse", Q(feedback__parse_ok=False)),
    "checks_passed": ("Parsed, and no automatic check failed",
                      Q(feedback__parse_ok=True) & ~Q(feedback__auto_check=False) & ~Q(feedback__peer_accepted=False)),
    "all": ("Every pending item", Q()),
}


def review_with_context() -> QuerySet[Review]:
    """Reviews with the feedback, its problem and the wrong answer, in one query (each join adds planning time).

    The prompts as sent (kilobytes each, shown on neither the review page nor the API) stay in the database.
    """
    return (Review.objects.select_related("feedback", "feedback__attempt", "feedback__problem")
            .defer("feedback__prompt", "feedback__attempt__prompt"))


# --- Choosing feedback for a queue ------------------------------------------------------------


@dataclass(frozen=True)
class FeedbackFilter:
    run: int | None = None
    method: str = ""
    teacher: str = ""  # part of the teacher's name
    checks: str = ""  # "": any; "failed": a check failed or output did not parse; "passed": none failed
    unreviewed: bool = False  # leave out feedback already in another queue

    def as_source(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if value not in (None, "", False)}


def feedback_search(spec: FeedbackFilter) -> QuerySet[Feedback]:
    feedback = Feedback.objects.all()
    if spec.run is not None:
        feedback = feedback.filter(run_id=spec.run)
    if spec.method:
        feedback = feedback.filter(method=spec.method)
    if spec.teacher:
        feedback = feedback.filter(teacher_name__icontains=spec.teacher)
    failed = Q(parse_ok=False) | Q(auto_check=False) | Q(peer_accepted=False)
    if spec.checks == "failed":
        feedback = feedback.filter(failed)
    elif spec.checks == "passed":
        feedback = feedback.exclude(failed)
    if spec.unreviewed:
        feedback = feedback.filter(~Exists(Review.objects.filter(feedback=OuterRef("pk"))))
    return feedback.order_by("id")


# --- Progress -------------------------------------------------------------------------------


def _tallies(prefix: str = "") -> dict:
    def count(*decisions) -> Count:
        return Count(f"{prefix}id", filter=Q(**{f"{prefix}decision__in": decisions}))

    return {"total": Count(f"{prefix}id"), "approved": count(Decision.APPROVE), "edited": count(Decision.EDIT),
            "rejected": count(Decision.REJECT), "skipped": count(Decision.SKIP), "pending": count(Decision.PENDING)}


def _with_percent(row: dict) -> dict:
    row["done"] = row["approved"] + row["edited"] + row["rejected"]
    row["percent"] = round(100 * row["done"] / row["total"]) if row["total"] else 0
    return row


def annotator_progress(queue: ReviewQueue) -> list[dict]:
    """Per annotator: assigned, approved, edited, rejected, skipped, pending, done, percent, seconds per decision."""
    rows = (Review.objects.filter(queue=queue).values("annotator_id", "annotator__username")
            .annotate(**_tallies(), seconds=Sum("seconds_spent")).order_by("annotator__username"))
    progress = []
    for row in rows:
        row = _with_percent(dict(row, username=row["annotator__username"]))
        row["seconds_per_item"] = (row["seconds"] or 0) / row["done"] if row["done"] else None
        progress.append(row)
    return progress


def queue_progress(queue: ReviewQueue) -> dict:
    """The whole queue: reviews by decision, items, and items every assigned annotator has decided."""
    totals = _with_percent(Review.objects.filter(queue=queue).aggregate(**_tallies()))
    items = Review.objects.filter(queue=queue).values("feedback_id").annotate(
        open=Count("id", filter=~Q(decision__in=DECIDED)))
    totals["items"] = items.count()
    totals["items_done"] = items.filter(open=0).count()
    return totals


def queues_for(user) -> list[ReviewQueue]:
    """Researchers: every queue; others: the queues they are on. Each with ``progress`` (the whole queue,
    researchers only) and ``mine`` (the user's own reviews in it, or None)."""
    queues = ReviewQueue.objects.order_by("-created_at")
    if not user.is_researcher:
        queues = queues.filter(annotators=user)
    queues = list(queues)

    def tallies(reviews: QuerySet[Review]) -> dict[int, dict]:
        return {row["queue_id"]: _with_percent(row) for row in reviews.values("queue_id").annotate(**_tallies())}

    overall = tallies(Review.objects.filter(queue__in=queues)) if user.is_researcher else {}
    mine = tallies(Review.objects.filter(annotator=user))
    for queue in queues:
        queue.progress, queue.mine = overall.get(queue.pk), mine.get(queue.pk)
    return queues


# --- Agreement ------------------------------------------------------------------------------


def _human_label(decision: str) -> str:
    return REJECT if decision == Decision.REJECT else ACCEPT  # an edit accepts the lesson, corrected


def human_decisions(queue: ReviewQueue) -> dict[int, dict[str, str]]:
    """feedback id -> {annotator: accept|reject}, from decided reviews (skips and pending left out)."""
    decisions: dict[int, dict[str, str]] = defaultdict(dict)
    for feedback_id, username, decision in (Review.objects.filter(queue=queue, decision__in=DECIDED)
                                            .values_list("feedback_id", "annotator__username", "decision")):
        decisions[feedback_id][username] = _human_label(decision)
    return dict(decisions)


def annotator_agreement(decisions: dict[int, dict[str, str]]) -> dict:
    """Agreement between annotators on items that several decided: pipeline.agreement picks Cohen or Fleiss."""
    shared = {item: raters for item, raters in decisions.items() if len(raters) >= 2}
    return agreement_summary(shared)


def checks_vs_humans(queue: ReviewQueue) -> list[dict]:
    """Each automatic check as a second rater beside the humans: one (check, human) pair per decided review."""
    rows = list(Review.objects.filter(queue=queue, decision__in=DECIDED)
                .values_list("decision", "feedback__auto_check", "feedback__peer_accepted"))
    result = []
    for name, label, index in (("auto_check", "Corrected answer = gold", 1), ("peer_accepted", "FAIR peer review", 2)):
        pairs = [(ACCEPT if row[index] else REJECT, _human_label(row[0])) for row in rows if row[index] is not None]
        if not pairs:
            continue
        checks, humans = [p[0] for p in pairs], [p[1] for p in pairs]
        same = sum(a == b for a, b in pairs)
        result.append({"check": name, "label": label, "n": len(pairs), "agreement": same / len(pairs),
                       "kappa": cohen_kappa(checks, humans)})
    return result


def queue_agreement(queue: ReviewQueue) -> dict:
    return {"annotators": annotator_agreement(human_decisions(queue)), "checks": checks_vs_humans(queue)}


# --- Approved items for export ----------------------------------------------------------------

APPROVAL_RULES = {
    "majority": "more annotators approved (or edited) than rejected it; ties are not approved",
    "any": "at least one annotator approved or edited it",
}


def approved_feedback(*, queue: ReviewQueue | None = None, run=None, rule: str = "majority") -> list[tuple[Feedback, str]]:
    """(feedback, text to train on) for each approved item, in feedback order.

    Approved: see APPROVAL_RULES (skips and pending reviews are no votes). The text is the latest edit
    among the approving reviews when there is one, else the teacher's text.
    """
    if rule not in APPROVAL_RULES:
        raise ValueError(f"unknown approval rule {rule!r}; known: {', '.join(APPROVAL_RULES)}")
    if (queue is None) == (run is None):
        raise ValueError("give a queue or a run")
    reviews = Review.objects.filter(decision__in=DECIDED)
    reviews = reviews.filter(queue=queue) if queue is not None else reviews.filter(feedback__run=run)
    votes: dict[int, list[tuple]] = defaultdict(list)
    for row in reviews.order_by("decided_at", "id").values_list("feedback_id", "decision", "edited_text"):
        votes[row[0]].append(row[1:])
    chosen: dict[int, str | None] = {}
    for feedback_id, cast in votes.items():
        accepts = [v for v in cast if v[0] != Decision.REJECT]
        if (len(accepts) > len(cast) - len(accepts)) if rule == "majority" else accepts:
            edits = [text for decision, text in accepts if decision == Decision.EDIT]
            chosen[feedback_id] = edits[-1] if edits else None
    feedback = Feedback.objects.filter(pk__in=chosen).select_related("attempt", "problem").order_by("id")
    return [(f, chosen[f.pk] or f.text) for f in feedback]


def _export_fields(feedback: Feedback) -> dict:
    """The typed fields, with FAIR's peer review (kept in its own columns) added for the FAIR rows export."""
    fields = dict(feedback.fields)
    if feedback.method == Method.FAIR:
        if feedback.peer_scores:
            fields.setdefault("peer_scores", feedback.peer_scores)
        if feedback.peer_accepted is not None:
            fields.setdefault("peer_accepted", feedback.peer_accepted)
    return fields


def items_without_wrong_answer(queue: ReviewQueue) -> int:
    """How many of the queue's items have no wrong answer (LbT rationales): a DPO export cannot pair them."""
    return Feedback.objects.filter(reviews__queue=queue, attempt__isnull=True).distinct().count()


def approved_item(feedback: Feedback, text: str) -> ApprovedItem:
    """One approved feedback as ``pipeline.exports.ApprovedItem``, ready for any export format.

    An LbT rationale answers the problem itself: its ``wrong`` is ``no_wrong_answer`` (the DPO export leaves it
    out). An imported teacher goes by the name in its file ("gpt", not "imported:gpt"), as FAIR's rows name it.
    """
    problem = feedback.problem.as_record()
    wrong = feedback.attempt.as_record() if feedback.attempt is not None else no_wrong_answer(problem)
    return ApprovedItem(problem=problem, wrong=wrong, method=feedback.method,
                        teacher=feedback.teacher_name.removeprefix(IMPORTED), fields=_export_fields(feedback), text=text)


def approved_items(*, queue: ReviewQueue | None = None, run=None, rule: str = "majority") -> list[ApprovedItem]:
    """The approved items of a queue (or a teacher run), in feedback order: see ``approved_item``."""
    return [approved_item(feedback, text) for feedback, text in approved_feedback(queue=queue, run=run, rule=rule)]


# --- The word diff of an edit -----------------------------------------------------------------

_TOKENS = re.compile(r"\s+|[^\s]+")


def word_diff(before: str, after: str) -> list[tuple[str, str]]:
    """(kind, text) segments, kind in equal/insert/delete, word by word; templates escape the text."""
    old, new = _TOKENS.findall(before), _TOKENS.findall(after)
    segments: list[tuple[str, str]] = []
    for tag, i1, i2, j1, j2 in difflib.SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            segments.append(("equal", "".join(old[i1:i2])))
            continue
        if tag in ("delete", "replace"):
            segments.append(("delete", "".join(old[i1:i2])))
        if tag in ("insert", "replace"):
            segments.append(("insert", "".join(new[j1:j2])))
    return segments
