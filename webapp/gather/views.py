"""Gather pages: launch a run, the mistakes browser, one attempt."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from webapp.accounts.permissions import researcher_required
from webapp.datasets.models import Dataset
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.forms import GUIDANCE_CHOICES, GatherForm
from webapp.gather.models import Attempt
from webapp.gather.selectors import AttemptFilter, attempt_search
from webapp.gather.services import GatherLaunchError, gather_launch
from webapp.runs.models import Run, RunKind


@researcher_required
@require_http_methods(["GET", "POST"])
def gather_new(request: HttpRequest) -> HttpResponse:
    form = GatherForm(request.POST or None, initial={"dataset": request.GET.get("dataset")})
    if request.method == "POST" and form.is_valid():
        try:
            run = gather_launch(user=request.user, data=form.config(), name=form.cleaned_data["name"])
        except GatherLaunchError as error:
            form.add_error(None, str(error))
        else:
            return redirect(run)
    return render(request, "gather/new.html", {"form": form}, status=400 if form.errors else 200)


@researcher_required
@require_http_methods(["GET"])
def attempt_browser(request: HttpRequest) -> HttpResponse:
    spec = AttemptFilter.from_params(request.GET)
    page = Paginator(attempt_search(spec), 50).get_page(request.GET.get("page"))
    context = {
        "page": page, "spec": spec, "datasets": Dataset.objects.all(), "guidance_choices": GUIDANCE_CHOICES,
        "runs": Run.objects.filter(kind=RunKind.GATHER)[:100], "models": ModelEndpoint.objects.filter(as_student=True),
    }
    template = "gather/attempts.html#results" if request.htmx else "gather/attempts.html"
    return render(request, template, context)


@researcher_required
@require_http_methods(["GET"])
def attempt_detail(request: HttpRequest, pk: int) -> HttpResponse:
    attempt = get_object_or_404(Attempt.objects.select_related("problem", "problem__dataset", "run", "endpoint"), pk=pk)
    return render(request, "gather/attempt.html", {"attempt": attempt})
