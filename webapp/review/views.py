"""Review pages: the queues, one queue's progress and agreement, and the keyboard-driven review page."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import push_url

from pipeline.exports import EXPORT_FORMATS
from pipeline.seeds.salam_finetune import parse_output as salam_parse_output
from webapp.accounts.permissions import researcher_required
from webapp.review.forms import BulkForm, DecisionForm, QueueForm
from webapp.review.models import Decision, Review, ReviewQueue
from webapp.review.selectors import (
    APPROVAL_RULES, annotator_progress, feedback_search, items_without_wrong_answer, queue_agreement, queue_progress,
    queues_for, review_with_context, word_diff,
)
from webapp.review.services import (
    ExportError, ReviewConflict, ReviewError, queue_create, review_next, review_submit, reviews_bulk_decide,
    download_type, training_data_file,
)
from webapp.teach.models import Feedback, Method


@require_http_methods(["GET", "POST"])
def queue_list(request: HttpRequest) -> HttpResponse:
    """Everyone sees their queues; researchers see all of them and the form for a new one."""
    if request.method == "POST" and not request.user.is_researcher:
        raise PermissionDenied("Only researchers create review queues.")
    form = QueueForm(request.POST or None, initial={"run": request.GET.get("run")}) if request.user.is_researcher else None
    if request.method == "POST" and form.is_valid():
        data, spec = form.cleaned_data, form.feedback_filter()
        try:
            queue = queue_create(name=data["name"], feedback=feedback_search(spec), annotators=data["annotators"],
                                 per_item=data["per_item"], priority=data["priority"], seed=data["seed"],
                                 user=request.user, source=spec.as_source())
        except ReviewError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Queue “{queue.name}” created: {queue.reviews.count()} reviews assigned.")
            return redirect(queue)
    context = {"queues": queues_for(request.user), "form": form}
    return render(request, "review/queues.html", context, status=400 if form is not None and form.errors else 200)


@researcher_required
@require_http_methods(["GET"])
def queue_detail(request: HttpRequest, pk: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue.objects.select_related("created_by"), pk=pk)
    context = {
        "queue": queue, "progress": queue_progress(queue), "annotators": annotator_progress(queue),
        "agreement": queue_agreement(queue), "bulk_form": BulkForm(), "formats": EXPORT_FORMATS.values(),
        "rules": APPROVAL_RULES, "is_annotator": queue.annotators.filter(pk=request.user.pk).exists(),
    }
    if not request.htmx:  # the export section is not in the progress partial
        context["without_wrong_answer"] = items_without_wrong_answer(queue)
    template = "review/queue.html#progress" if request.htmx else "review/queue.html"
    return render(request, template, context)


@researcher_required
@require_POST
def queue_bulk(request: HttpRequest, pk: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue, pk=pk)
    form = BulkForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a decision and a filter.")
        return redirect(queue)
    count = reviews_bulk_decide(queue=queue, user=request.user, **form.cleaned_data)
    messages.success(request, f"{count} pending review{'s' if count != 1 else ''} set to {form.cleaned_data['decision']}.")
    return redirect(queue)


@researcher_required
@require_http_methods(["GET"])
def queue_export(request: HttpRequest, pk: int) -> HttpResponse:
    queue = get_object_or_404(ReviewQueue, pk=pk)
    format, rule = request.GET.get("format", ""), request.GET.get("rule", "majority")
    if format not in EXPORT_FORMATS or rule not in APPROVAL_RULES:
        return HttpResponse(f"Choose ?format= one of {', '.join(sorted(EXPORT_FORMATS))} and ?rule= one of "
                            f"{', '.join(APPROVAL_RULES)}.", status=400, content_type="text/plain")
    try:
        handle, name, summary = training_data_file(queue=queue, format=format, rule=rule)
    except ExportError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    return FileResponse(handle, as_attachment=True, filename=name, content_type=download_type(name),
                        headers=summary.headers)


# --- The review page --------------------------------------------------------------------------


def _salam_parts(feedback: Feedback, draft, edited_text: str) -> dict[str, str]:
    """What SALAM's Reason and Guideline boxes hold: the unsaved draft, else the saved edit, else the teacher's."""
    if draft.get("reason") or draft.get("guideline"):
        return {"reason": draft.get("reason", ""), "guideline": draft.get("guideline", "")}
    for text in filter(None, (draft.get("edited_text"), edited_text)):
        reason, guideline, problem = salam_parse_output(text)
        if not problem:
            return {"reason": reason, "guideline": guideline}
    return {"reason": feedback.fields.get("reason") or "", "guideline": feedback.fields.get("guideline") or ""}


def _salam_diffs(feedback: Feedback, parts: dict[str, str]) -> list[tuple[str, list]]:
    """Each box's word diff against the teacher's reason or guideline."""
    return [(name.capitalize(), word_diff(feedback.fields.get(name) or "", parts.get(name, "").replace("\r\n", "\n")))
            for name in ("reason", "guideline")]


def _item_context(review: Review | None, queue: ReviewQueue, user, **extra) -> dict:
    """What the review page shows: the item (or the all-done state) and the annotator's counts."""
    mine = Review.objects.filter(queue=queue, annotator=user)
    context = {"review": review, "queue": queue, "pending": mine.filter(decision=Decision.PENDING).count(),
               "skipped": mine.filter(decision=Decision.SKIP).count(), **extra}
    if review is None:
        return context
    feedback, draft = review.feedback, extra.get("draft", {})
    context["fields"] = [(name.replace("_", " ").capitalize(), value) for name, value in feedback.fields.items()]
    saved_edit = review.edited_text if review.decision == Decision.EDIT else ""
    if feedback.method == Method.SALAM:  # two boxes, composed into SALAM's JSON by DecisionForm
        context["salam"] = _salam_parts(feedback, draft, saved_edit)
        if saved_edit or draft.get("decision") == Decision.EDIT:
            context["salam_diffs"] = _salam_diffs(feedback, context["salam"])
        return context
    context["edit_text"] = draft.get("edited_text") or saved_edit or feedback.text
    if saved_edit:
        context["diff"] = word_diff(feedback.text, saved_edit)
    return context


def _item_response(request: HttpRequest, context: dict, *, status: int = 200) -> HttpResponse:
    template = "review/work.html#item" if request.htmx else "review/work.html"
    return render(request, template, context, status=status)


@require_http_methods(["GET"])
def review_work(request: HttpRequest, pk: int) -> HttpResponse:
    """The annotator's next item in the queue (``?skipped=1``: go back over skipped ones when nothing is pending)."""
    queue = get_object_or_404(ReviewQueue, pk=pk, annotators=request.user)
    revisit = request.GET.get("skipped") == "1"
    review = review_next(annotator=request.user, queue=queue, revisit_skipped=revisit)
    return _item_response(request, _item_context(review, queue, request.user, revisit=revisit))


@require_http_methods(["GET", "POST"])
def review_item(request: HttpRequest, pk: int) -> HttpResponse:
    """One of the user's own reviews; POST saves a decision and answers with the next item."""
    review = get_object_or_404(review_with_context(), pk=pk, annotator=request.user)
    if request.method == "GET":
        return _item_response(request, _item_context(review, review.queue, request.user))
    form = DecisionForm(request.POST, salam=review.feedback.method == Method.SALAM)
    revisit = request.POST.get("revisit") == "1"
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(e)}" for name, e in form.errors.items())
        return _item_response(request, _item_context(review, review.queue, request.user, error=errors,
                                                     draft=request.POST, revisit=revisit), status=400)
    try:
        review_submit(review_id=review.pk, user=request.user, **form.submission())
    except ReviewConflict as conflict:
        context = _item_context(conflict.current, review.queue, request.user, conflict=True, draft=form.cleaned_data,
                                revisit=revisit)
        return _item_response(request, context, status=409)
    except ReviewError as error:
        return _item_response(request, _item_context(review, review.queue, request.user, error=str(error),
                                                     draft=form.cleaned_data, revisit=revisit), status=400)
    following = review_next(annotator=request.user, queue=review.queue, revisit_skipped=revisit)
    url = following.get_absolute_url() if following else reverse("review:work", args=[review.queue_id])
    if not request.htmx:
        return redirect(url)
    return push_url(_item_response(request, _item_context(following, review.queue, request.user, revisit=revisit)), url)


@require_POST
def review_diff(request: HttpRequest, pk: int) -> HttpResponse:
    """The live word diff of the edit box against the teacher's text (SALAM: of each box against the teacher's
    reason and guideline); the template escapes it."""
    review = get_object_or_404(Review.objects.select_related("feedback"), pk=pk, annotator=request.user)
    feedback = review.feedback
    if feedback.method == Method.SALAM and ("reason" in request.POST or "guideline" in request.POST):
        context = {"salam_diffs": _salam_diffs(feedback, request.POST)}
    else:
        context = {"diff": word_diff(feedback.text, request.POST.get("edited_text", "").replace("\r\n", "\n"))}
    return render(request, "review/work.html#diff", context | {"review": review})
