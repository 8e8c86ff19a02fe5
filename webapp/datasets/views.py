"""Dataset pages: list, problem browser with search, problem page, import form and import progress."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods
from django_htmx.http import HttpResponseClientRedirect

from webapp.accounts.permissions import researcher_required
from webapp.datasets import selectors
from webapp.datasets.forms import ImportForm
from webapp.datasets.models import Dataset, DatasetImport, Problem, Split
from webapp.datasets.services import ImportRejected, dataset_import_create
from webapp.datasets.tasks import import_dataset

PAGE_SIZE = 50


@researcher_required
@require_http_methods(["GET"])
def dataset_list(request: HttpRequest) -> HttpResponse:
    imports = DatasetImport.objects.select_related("dataset")[:10]
    return render(request, "datasets/list.html", {"datasets": selectors.dataset_list(), "imports": imports})


@researcher_required
@require_http_methods(["GET"])
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(Dataset, pk=pk)
    query, split, task = request.GET.get("q", "").strip(), request.GET.get("split", ""), request.GET.get("task", "")
    problems = selectors.problem_search(dataset=dataset, query=query, split=split, task=task)
    page = Paginator(problems, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "dataset": dataset, "page": page, "query": query, "split": split, "task": task,
        "splits": Split.choices, "tasks": selectors.dataset_tasks(dataset),
    }
    template = "datasets/detail.html#results" if request.htmx else "datasets/detail.html"
    return render(request, template, context)


@researcher_required
@require_http_methods(["GET"])
def problem_detail(request: HttpRequest, pk: int) -> HttpResponse:
    problem = get_object_or_404(Problem.objects.select_related("dataset"), pk=pk)
    return render(request, "datasets/problem.html", {"problem": problem})


@researcher_required
@require_http_methods(["GET", "POST"])
def import_new(request: HttpRequest) -> HttpResponse:
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            job = dataset_import_create(user=request.user, options=form.options(), uploads=form.cleaned_data["files"])
        except ImportRejected as error:
            form.add_error(None, str(error))
        else:
            import_dataset.delay_on_commit(job.pk)
            messages.info(request, "The files are uploaded; the import runs in the background.")
            return HttpResponseClientRedirect(job.get_absolute_url()) if request.htmx else redirect(job)
    if request.htmx:
        # htmx swaps only 2xx answers: the form with its errors comes back as 200.
        return render(request, "datasets/import.html#form", {"form": form})
    return render(request, "datasets/import.html", {"form": form}, status=400 if form.errors else 200)


@researcher_required
@require_http_methods(["GET"])
def import_detail(request: HttpRequest, pk: int) -> HttpResponse:
    job = get_object_or_404(DatasetImport.objects.select_related("dataset", "created_by"), pk=pk)
    template = "datasets/import_detail.html#status" if request.htmx else "datasets/import_detail.html"
    return render(request, template, {"job": job})
