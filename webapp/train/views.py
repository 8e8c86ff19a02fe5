"""Train pages: training sets (build, preview), launching a run, serving a checkpoint."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.permissions import researcher_required
from webapp.runs.models import Run, RunKind
from webapp.train.forms import TrainingSetForm, TrainLaunchForm
from webapp.train.models import Checkpoint, TrainingSet
from webapp.train.runs import TrainLaunchError, train_launch
from webapp.train.selectors import base_candidates, set_preview
from webapp.train.serving import CheckpointServeError, checkpoint_register
from webapp.train.sets import (
    TrainingSetError, training_set_from_file, training_set_from_gather, training_set_from_queue,
)


@researcher_required
@require_http_methods(["GET"])
def train_index(request: HttpRequest) -> HttpResponse:
    sets = Paginator(TrainingSet.objects.select_related("created_by"), 20).get_page(request.GET.get("page"))
    runs = Run.objects.filter(kind=RunKind.TRAIN).select_related("created_by")[:20]
    return render(request, "train/index.html", {"sets": sets, "runs": runs})


@researcher_required
@require_http_methods(["GET", "POST"])
def set_new(request: HttpRequest) -> HttpResponse:
    form = TrainingSetForm(request.POST or None, request.FILES or None,
                           initial={"queue": request.GET.get("queue"), "source": request.GET.get("source", "queue")})
    if request.method == "POST" and form.is_valid():
        try:
            training_set = _build(form.cleaned_data, request.user)
        except TrainingSetError as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, f"Built {training_set.counts['train']} training and "
                                      f"{training_set.counts['validation']} validation examples.")
            return redirect(training_set)
    return render(request, "train/set_new.html", {"form": form}, status=400 if form.errors else 200)


def _build(data: dict, user) -> TrainingSet:
    common = {"name": data["name"], "validation_share": data["validation_share"], "seed": data["seed"], "user": user}
    if data["source"] == "queue":
        return training_set_from_queue(queue=data["queue"], target=data["target"], rule=data["rule"] or "majority",
                                       cot_ratio=data.get("cot_ratio") or 0.0, **common)
    if data["source"] == "gather":
        return training_set_from_gather(run=data["gather_run"], **common)
    with tempfile.TemporaryDirectory(prefix="errata-training-file-") as folder:
        path = Path(folder) / Path(data["file"].name).name
        with path.open("wb") as handle:
            for chunk in data["file"].chunks():
                handle.write(chunk)
        return training_set_from_file(path=path, **common)


@researcher_required
@require_http_methods(["GET"])
def set_detail(request: HttpRequest, pk: int) -> HttpResponse:
    training_set = get_object_or_404(TrainingSet, pk=pk)
    bases = list(base_candidates())
    chosen = next((b for b in bases if str(b.pk) == request.GET.get("base")), bases[0] if bases else None)
    max_length = _int_param(request.GET.get("max_length"), 1024, 16, 32768)
    examples = Paginator(training_set.examples.select_related("feedback"), 25).get_page(request.GET.get("page"))
    if request.htmx and request.GET.get("page"):
        return render(request, "train/set.html#examples", {"training_set": training_set, "examples": examples})
    return render(request, "train/set.html", {
        "training_set": training_set, "bases": bases, "base": chosen, "max_length": max_length,
        "preview": set_preview(training_set, chosen, max_length=max_length), "examples": examples})


def _int_param(value, default: int, low: int, high: int) -> int:
    return min(max(int(value), low), high) if value and value.isdigit() else default


@researcher_required
@require_http_methods(["GET", "POST"])
def train_new(request: HttpRequest) -> HttpResponse:
    form = TrainLaunchForm(request.POST or None, initial={"training_set": request.GET.get("set")})
    if request.method == "POST" and form.is_valid():
        try:
            run = train_launch(user=request.user, training_set=form.cleaned_data["training_set"],
                               base=form.cleaned_data["base"], config=form.config(), name=form.cleaned_data["name"],
                               auto_register=form.cleaned_data["auto_register"])
        except TrainLaunchError as error:
            form.add_error(None, str(error))
        else:
            return redirect(run)
    return render(request, "train/new.html", {"form": form}, status=400 if form.errors else 200)


@researcher_required
@require_POST
def checkpoint_serve(request: HttpRequest, pk: int) -> HttpResponse:
    checkpoint = get_object_or_404(Checkpoint.objects.select_related("run"), pk=pk)
    try:
        endpoint = checkpoint_register(checkpoint=checkpoint, user=request.user)
    except CheckpointServeError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Serving it as {endpoint.name} (model name {endpoint.model_name}).")
    return redirect(checkpoint.run)
