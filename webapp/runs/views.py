"""Run pages: the list, one run's live progress and log, cancel and resume."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from pipeline.seeds import SEED_FORMATS
from webapp.accounts.permissions import researcher_required
from webapp.runs.dispatch import run_enqueue
from webapp.runs.models import Run, RunKind
from webapp.runs.services import RunStateError, run_cancel, run_requeue


SEED_FORMAT_NAMES = sorted(SEED_FORMATS)


@researcher_required
@require_http_methods(["GET"])
def run_list(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", "")
    runs = Run.objects.select_related("created_by")
    if kind in RunKind.values:
        runs = runs.filter(kind=kind)
    page = Paginator(runs, 25).get_page(request.GET.get("page"))
    template = "runs/list.html#table" if request.htmx else "runs/list.html"
    return render(request, template, {"page": page, "kind": kind, "kinds": RunKind.choices})


@researcher_required
@require_http_methods(["GET"])
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("created_by"), pk=pk)
    events = list(run.events.order_by("-at", "-id")[:50])
    template = "runs/detail.html#live" if request.htmx else "runs/detail.html"
    context = {"run": run, "events": events, "seed_formats": SEED_FORMAT_NAMES}
    if run.kind == RunKind.TEACH:
        from webapp.teach.selectors import teacher_agreement, teacher_results

        context.update(teacher_results=teacher_results(run.pk), teacher_agreement=teacher_agreement(run.pk))
    if run.kind == RunKind.TRAIN:
        from webapp.train.selectors import train_context

        context.update(train_context(run))
    if run.kind == RunKind.EXAM:
        from webapp.exams.selectors import exam_results

        context.update(exam_results=exam_results(run))
    return render(request, template, context)


@researcher_required
@require_POST
def run_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=pk)
    try:
        run_cancel(run=run)
        messages.info(request, "Cancelling: the run stops at its next safe point; its answers so far are kept.")
    except RunStateError as error:
        messages.error(request, str(error))
    return redirect(run)


@researcher_required
@require_POST
def run_resume_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=pk)
    try:
        run = run_requeue(run=run)
        run_enqueue(run)
        messages.info(request, "Resumed: work already done is kept and not asked for again.")
    except RunStateError as error:
        messages.error(request, str(error))
    return redirect(run)
