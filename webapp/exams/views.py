"""Exam pages: the list, launching one (with an estimate), the shareable report and its exports, the comparison of
two exams, and the trace from one answer back to the training data. Only launching needs a researcher."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods

from webapp.accounts.permissions import researcher_required
from webapp.exams.exports import export_response
from webapp.exams.forms import CompareForm, ExamForm
from webapp.exams.models import ExamAnswer
from webapp.exams.selectors import (
    VERDICTS, AnswerFilter, answer_search, exam_comparison, exam_description, exam_results, exam_runs,
)
from webapp.exams.services import ExamLaunchError, exam_estimate, exam_launch
from webapp.exams.trace import answer_trace
from webapp.runs.models import Run


def _exam(pk: int) -> Run:
    return get_object_or_404(exam_runs(), pk=pk)


@require_GET
def exam_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(exam_runs(), 25).get_page(request.GET.get("page"))
    exams = list(page.object_list)
    initial = {"after": exams[0].pk, "before": exams[1].pk} if len(exams) > 1 else {}
    return render(request, "exams/list.html", {"page": page, "compare": CompareForm(initial=initial)})


@researcher_required
@require_http_methods(["GET", "POST"])
def exam_new(request: HttpRequest) -> HttpResponse:
    form = ExamForm(request.POST or None, initial={"datasets": request.GET.getlist("dataset"), "student": request.GET.get("student")})
    context = {"form": form}
    if request.method == "POST" and form.is_valid():
        try:
            if "estimate" in request.POST:
                context["estimate"] = exam_estimate(form.config())
            else:
                return redirect(exam_launch(user=request.user, data=form.config(), name=form.cleaned_data["name"]))
        except ExamLaunchError as error:
            form.add_error(None, str(error))
    if request.htmx and "estimate" in request.POST:
        return render(request, "exams/new.html#estimate", context)
    return render(request, "exams/new.html", context, status=400 if form.errors else 200)


@require_GET
def exam_report(request: HttpRequest, pk: int) -> HttpResponse:
    run = _exam(pk)
    spec = AnswerFilter.from_params(request.GET)
    page = Paginator(answer_search(run, spec), 50).get_page(request.GET.get("page"))
    context = {"run": run, "spec": spec, "page": page, "verdicts": VERDICTS}
    if request.htmx and request.htmx.target == "results":
        return render(request, "exams/report.html#answers", context)
    context |= {"results": exam_results(run), "description": exam_description(run)}
    if request.htmx and request.htmx.target == "summary":
        return render(request, "exams/report.html#summary", context)
    return render(request, "exams/report.html", context)


@require_GET
def exam_export(request: HttpRequest, pk: int) -> HttpResponse:
    return export_response(_exam(pk), request.GET.get("format", "csv"))


@require_GET
def exam_compare(request: HttpRequest) -> HttpResponse:
    form = CompareForm(request.GET or None)
    if not form.is_valid():
        return render(request, "exams/compare.html", {"form": form}, status=400 if form.errors else 200)
    comparison = exam_comparison(form.cleaned_data["before"], form.cleaned_data["after"])
    return render(request, "exams/compare.html", {"form": form, "comparison": comparison})


@require_GET
def answer_trace_view(request: HttpRequest, pk: int) -> HttpResponse:
    answer = get_object_or_404(ExamAnswer.objects.select_related("run", "problem", "problem__dataset", "attempt"), pk=pk)
    return render(request, "exams/trace.html", answer_trace(answer))
