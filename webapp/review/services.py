"""Writes for review: build a queue, save one annotator's decision (compare-and-swap), bulk decisions, export."""

from __future__ import annotations

import mimetypes
import random
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from pipeline.exports import EXPORT_FORMATS, ExportError
from pipeline.seeds.salam_finetune import parse_output as salam_parse_output
from webapp.review.models import Decision, Priority, Review, ReviewQueue
from webapp.review.selectors import BULK_FILTERS, approved_items, review_with_context
from webapp.teach.models import Feedback, Method

# Longer than this on one item is a break, not work: the clock is capped so averages stay meaningful.
MAX_SECONDS_PER_ITEM = 3600.0


class ReviewError(ValueError):
    """A request the review rules refuse (an empty edit, more annotators per item than annotators...)."""


class ReviewConflict(Exception):
    """The review changed since the caller loaded it; ``current`` is the review as saved now."""

    def __init__(self, current: Review):
        self.current = current
        super().__init__(f"review {current.pk} is at version {current.version}: someone saved it first")


# --- Building a queue -----------------------------------------------------------------------


def _mistake(row: dict) -> tuple:
    """What feedback is about: its mistake, or for an LbT rationale (no mistake) its problem."""
    return (0, row["attempt_id"]) if row["attempt_id"] is not None else (1, row["problem_id"])


def _disagreements(rows: Sequence[dict]) -> set[tuple]:
    """Mistakes whose feedback rows in the selection disagree on the corrected answer or on a check."""
    verdicts: dict[tuple, set[tuple]] = defaultdict(set)
    for row in rows:
        verdicts[_mistake(row)].add(
            (" ".join(row["corrected_answer"].split()).lower(), row["auto_check"], row["peer_accepted"]))
    return {mistake for mistake, seen in verdicts.items() if len(seen) > 1}


def _priority_order(rows: Sequence[dict], priority: str, seed: int) -> list[int]:
    """Feedback ids in review order.

    checks_first: failed automatic checks (``Feedback.checks_failed``) and teacher disagreements (several
    feedback rows in the selection on one mistake whose corrected answer or checks differ) first, then
    the rest; within each tier feedback on the same mistake stays together, so disagreements sit side by side.
    random: a shuffle seeded with ``seed`` (the same seed gives the same order).
    """
    if priority == Priority.RANDOM:
        ids = sorted(row["id"] for row in rows)
        random.Random(seed).shuffle(ids)
        return ids
    disagreeing = _disagreements(rows)

    def urgent(row: dict) -> bool:
        return (row["parse_ok"] is False or row["auto_check"] is False or row["peer_accepted"] is False
                or _mistake(row) in disagreeing)

    return [row["id"] for row in sorted(rows, key=lambda r: (not urgent(r), _mistake(r), r["id"]))]


def assignment_plan(item_count: int, annotator_ids: Sequence[int], per_item: int) -> list[list[int]]:
    """Balanced round-robin: item i goes to annotators i*per_item .. i*per_item+per_item-1 (mod n).

    Every item gets ``per_item`` different annotators and loads differ by at most one item.
    """
    n = len(annotator_ids)
    return [[annotator_ids[(i * per_item + j) % n] for j in range(per_item)] for i in range(item_count)]


@transaction.atomic
def queue_create(*, name: str, feedback: QuerySet[Feedback] | Iterable[Feedback], annotators: Iterable, per_item: int = 1,
                 priority: str = Priority.CHECKS_FIRST, seed: int = 0, user=None, source: dict | None = None,
                 description: str = "") -> ReviewQueue:
    """A queue over ``feedback``: each item assigned to ``per_item`` annotators, positioned by ``priority``."""
    annotators = sorted({a.pk: a for a in annotators}.values(), key=lambda a: a.pk)
    if not annotators:
        raise ReviewError("choose at least one annotator")
    if per_item < 1:
        raise ReviewError("each item needs at least one annotator")
    if per_item > len(annotators):
        raise ReviewError(f"{per_item} annotators per item, but only {len(annotators)} annotator"
                          f"{'s' if len(annotators) != 1 else ''} chosen: choose more annotators or fewer per item")
    if priority not in Priority.values:
        raise ReviewError(f"unknown priority {priority!r}; known: {', '.join(Priority.values)}")
    ids = [f.pk for f in feedback] if not isinstance(feedback, QuerySet) else None
    rows = Feedback.objects.filter(pk__in=ids) if ids is not None else feedback
    rows = list(rows.order_by().values("id", "attempt_id", "problem_id", "parse_ok", "auto_check", "peer_accepted", "corrected_answer"))
    if not rows:
        raise ReviewError("no feedback matches: nothing to review")
    queue = ReviewQueue.objects.create(name=name, description=description, source=source or {}, per_item=per_item,
                                       priority=priority, seed=seed, created_by=user)
    queue.annotators.set(annotators)
    order = _priority_order(rows, priority, seed)
    plan = assignment_plan(len(order), [a.pk for a in annotators], per_item)
    Review.objects.bulk_create(
        (Review(queue=queue, feedback_id=feedback_id, annotator_id=annotator_id, position=position)
         for position, (feedback_id, assigned) in enumerate(zip(order, plan)) for annotator_id in assigned),
        batch_size=5000,
    )
    return queue


# --- One annotator's decisions --------------------------------------------------------------


def review_next(*, annotator, queue: ReviewQueue | int, revisit_skipped: bool = False) -> Review | None:
    """The annotator's pending review with the lowest position in ``queue`` (then skipped ones, when asked)."""
    decisions = [Decision.PENDING, Decision.SKIP] if revisit_skipped else [Decision.PENDING]
    queue_id = queue.pk if isinstance(queue, ReviewQueue) else queue
    reviews = review_with_context().filter(queue_id=queue_id, annotator=annotator, decision__in=decisions)
    # Pending before skipped, then by position; pending alone uses the (queue, annotator, decision, position) index.
    if revisit_skipped:
        return reviews.order_by("decision", "position").first()  # "pending" sorts before "skip"
    return reviews.order_by("position").first()


def _checked_edit(feedback: Feedback, edited_text: str) -> str:
    edited_text = edited_text.replace("\r\n", "\n").strip()
    unchanged = ReviewError("the edit is the same as the teacher's text: approve it instead, or change it")
    if not edited_text:
        raise ReviewError("an edit needs the corrected text")
    if edited_text == feedback.text.strip():
        raise unchanged
    if feedback.method == Method.SALAM:
        reason, guideline, problem = salam_parse_output(edited_text)
        if problem:  # SALAM trains on the JSON object itself; a broken one could not be exported
            raise ReviewError(f'SALAM feedback is a JSON {{"reason": ..., "guideline": ...}} object; the edit is not: {problem}')
        teachers = [feedback.fields.get(key) for key in ("reason", "guideline")]
        if [reason.strip(), guideline.strip()] == [text.strip() if isinstance(text, str) else text for text in teachers]:
            raise unchanged  # the same reason and guideline, only written out differently
    return edited_text


def review_submit(*, review_id: int, user, version: int, decision: str, edited_text: str = "", comment: str = "",
                  seconds: float = 0.0) -> Review:
    """Save ``user``'s decision on their review if nobody saved it since ``version``; else raise ReviewConflict.

    Only the assigned annotator may decide (PermissionDenied; Review.DoesNotExist for no such review). The
    update names the version it started from, so of two saves from the same starting version exactly one
    changes the row; the other gets the row as it now is. Approve, reject and skip take one UPDATE. No
    transaction is needed (the compare-and-swap is one statement) and none is opened: BEGIN and COMMIT
    would be two more round trips on the hottest path an annotator has.
    """
    if decision not in Decision.values or decision == Decision.PENDING:
        raise ReviewError(f"unknown decision {decision!r}; choose approve, edit, reject or skip")
    if decision == Decision.EDIT:
        review = Review.objects.select_related("feedback").get(pk=review_id)
        if review.annotator_id != user.pk:
            raise PermissionDenied("This item is assigned to someone else.")
        edited_text = _checked_edit(review.feedback, edited_text)
    else:
        edited_text = ""
    seconds = min(max(float(seconds or 0), 0.0), MAX_SECONDS_PER_ITEM)
    changed = Review.objects.filter(pk=review_id, version=version, annotator=user).update(
        decision=decision, edited_text=edited_text, comment=comment.strip(), decided_at=timezone.now(),
        seconds_spent=F("seconds_spent") + seconds, version=F("version") + 1, updated_by=user,
    )
    if changed == 1:
        return Review.objects.get(pk=review_id)
    current = review_with_context().get(pk=review_id)  # why not: gone, someone else's, or saved since
    if current.annotator_id != user.pk:
        raise PermissionDenied("This item is assigned to someone else.")
    raise ReviewConflict(current=current)


@transaction.atomic
def reviews_bulk_decide(*, queue: ReviewQueue, user, decision: str, filter: str) -> int:
    """Researchers: decide every PENDING review in ``queue`` matching the named filter; returns how many.

    Each row's version goes up, so an annotator still looking at one of them gets a conflict, not a silent
    overwrite. Reviews already decided are never touched.
    """
    if not user.is_researcher:
        raise PermissionDenied("Bulk decisions are for researchers.")
    if decision not in (Decision.APPROVE, Decision.REJECT):
        raise ReviewError("bulk decisions are approve or reject")
    if filter not in BULK_FILTERS:
        raise ReviewError(f"unknown filter {filter!r}; known: {', '.join(BULK_FILTERS)}")
    condition = BULK_FILTERS[filter][1]
    pending = Review.objects.filter(queue=queue, decision=Decision.PENDING).filter(condition)
    return pending.update(decision=decision, decided_at=timezone.now(), updated_by=user, version=F("version") + 1)


# --- Export ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote: ``written`` approved items, and how many of the format's methods it left out
    because they have no wrong answer to reject (DPO; an LbT rationale answers the problem itself)."""

    written: int
    no_wrong_answer: int = 0

    @property
    def note(self) -> str:
        """The left-out items in a sentence for the person exporting; empty when none were left out."""
        if not self.no_wrong_answer:
            return ""
        n = self.no_wrong_answer
        return (f"{n} approved item{'s' if n != 1 else ''} ha{'ve' if n != 1 else 's'} no wrong answer to reject "
                "(an LbT rationale answers the problem itself): left out of the DPO pairs.")

    @property
    def headers(self) -> dict[str, str]:
        """The summary as HTTP headers of a download (the file itself has no room for it)."""
        headers = {"X-Errata-Exported": str(self.written), "X-Errata-Left-Out": str(self.no_wrong_answer)}
        return headers | ({"X-Errata-Note": self.note} if self.note else {})


def training_data_export(*, format: str, path: Path, queue: ReviewQueue | None = None, run=None,
                         rule: str = "majority") -> ExportSummary:
    """Write the approved items of a queue (or a teacher run) that ``format`` can hold to ``path``.

    Items of other methods are not this format's; items of its methods that it cannot hold (DPO: no wrong
    answer to reject) are left out and counted. Raises ``pipeline.exports.ExportError`` for an unknown format,
    when nothing fits (saying what was left out), or for an item the format cannot hold (the message names
    it); no file is written then.
    """
    if format not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {format!r}; known: {', '.join(sorted(EXPORT_FORMATS))}")
    export = EXPORT_FORMATS[format]
    own = [item for item in approved_items(queue=queue, run=run, rule=rule) if item.method in export.methods]
    items = [item for item in own if export.accepts(item)]
    summary = ExportSummary(written=len(items), no_wrong_answer=len(own) - len(items))
    if summary.note and not items:
        raise ExportError(f"nothing to export as {format}: {summary.note}")
    if not items:
        raise ExportError(f"no approved {' or '.join(export.methods)} feedback to export as {format} yet")
    export.write(items, Path(path))
    return summary


def training_data_file(*, queue: ReviewQueue, format: str, rule: str = "majority") -> tuple[BinaryIO, str, ExportSummary]:
    """The queue's export as an open file, already removed from disk (the handle keeps it), its download name,
    and what it holds."""
    if format not in EXPORT_FORMATS:
        raise ExportError(f"unknown export format {format!r}; known: {', '.join(sorted(EXPORT_FORMATS))}")
    folder = Path(tempfile.mkdtemp(prefix="errata-export-"))
    path = folder / f"queue-{queue.pk}-{format}{EXPORT_FORMATS[format].file_suffix}"
    try:
        summary = training_data_export(queue=queue, format=format, path=path, rule=rule)
        return path.open("rb"), path.name, summary
    finally:
        shutil.rmtree(folder)


def download_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"
