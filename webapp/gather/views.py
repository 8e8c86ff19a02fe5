"""Gather pages: launch a run, the mistakes browser, one attempt."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from webapp.accounts.permissions import researcher_required
from webapp.core.uploads import validate_upload_size
from webapp.datasets.models import Dataset
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.forms import GUIDANCE_CHOICES, GatherForm
from webapp.gather.models import Attempt
from pipeline.benchmarks.records import DatasetFormatError
from pipeline.seeds import SEED_FORMATS
from webapp.gather.seeds import SeedImportError, seed_export, seed_import_upload
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


class SeedImportForm(forms.Form):
    file = forms.FileField(validators=[validate_upload_size], help_text="SALAM status.json or collections, FAIR *_round0.json, GSI results.")
    format = forms.ChoiceField(required=False, choices=[("", "Detect from the content")] +
                               [(name, f"{name} — {fmt.description}") for name, fmt in SEED_FORMATS.items()])
    dataset_name = forms.CharField(required=False, max_length=200)
    model_name = forms.CharField(required=False, max_length=200, help_text="The student that wrote the answers.")


@researcher_required
@require_http_methods(["GET", "POST"])
def seed_import_view(request: HttpRequest) -> HttpResponse:
    form = SeedImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            imported = seed_import_upload(upload=form.cleaned_data["file"], format=form.cleaned_data["format"] or None,
                                          user=request.user, dataset_name=form.cleaned_data["dataset_name"],
                                          model_name=form.cleaned_data["model_name"])
        except (DatasetFormatError, SeedImportError) as error:
            form.add_error("file", f"Nothing was imported: {error}")
        else:
            if imported.already:
                messages.info(request, "This file was imported before: nothing added.")
            return redirect(imported.run)
    return render(request, "gather/import_seed.html", {"form": form}, status=400 if form.errors else 200)


@researcher_required
@require_http_methods(["GET"])
def seed_export_view(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run, pk=pk, kind=RunKind.GATHER)
    format = request.GET.get("format", "")
    folder = tempfile.mkdtemp()
    try:
        path = seed_export(run=run, format=format, path=Path(folder) / f"run-{run.pk}-{format}.json")
        download = path.open("rb")  # the open handle keeps the file once the folder is removed
    except SeedImportError as error:
        return HttpResponse(str(error), status=400, content_type="text/plain")
    finally:
        shutil.rmtree(folder)
    return FileResponse(download, as_attachment=True, filename=path.name, content_type="application/json")
