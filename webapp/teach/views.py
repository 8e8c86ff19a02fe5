"""Teach pages: launch a teacher run (with its estimate), browse feedback, one feedback, prompt templates."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from pipeline.teach_config import parse_teach_config
from pipeline.teaching import DEFAULT_TEMPLATES, TemplateError
from webapp.accounts.permissions import researcher_required
from webapp.teach.forms import FeedbackImportForm, TeachForm, TemplateForm
from webapp.teach.imports import IMPORT_ERRORS, feedback_import_upload
from webapp.teach.models import Feedback, PromptTemplate
from webapp.teach.selectors import feedback_search
from webapp.teach.services import TeachLaunchError, teach_estimate, teach_launch
from webapp.teach.templates_store import template_ensure_defaults, template_new_version


@researcher_required
@require_http_methods(["GET", "POST"])
def teach_new(request: HttpRequest) -> HttpResponse:
    form = TeachForm(request.POST or None, initial={"gather_run": request.GET.get("gather_run"),
                                                    "mistakes_filter": request.GET.get("mistakes", "")})
    selected = form.selected_mistakes() if request.method == "GET" else None
    context = {"form": form, "selected": selected}
    if request.method == "POST" and form.is_valid():
        try:
            if "estimate" in request.POST:
                context["estimate"] = teach_estimate(parse_teach_config(form.config()))
            else:
                run = teach_launch(user=request.user, data=form.config(), name=form.cleaned_data["name"])
                return redirect(run)
        except (TeachLaunchError, ValueError) as error:
            form.add_error(None, str(error))
    if request.htmx and "estimate" in request.POST:
        return render(request, "teach/new.html#estimate", context)
    return render(request, "teach/new.html", context, status=400 if form.errors else 200)


@researcher_required
@require_http_methods(["GET"])
def feedback_list(request: HttpRequest) -> HttpResponse:
    page = Paginator(feedback_search(request.GET), 50).get_page(request.GET.get("page"))
    template = "teach/feedback_list.html#results" if request.htmx else "teach/feedback_list.html"
    return render(request, template, {"page": page, "params": request.GET})


@researcher_required
@require_http_methods(["GET"])
def feedback_detail(request: HttpRequest, pk: int) -> HttpResponse:
    feedback = get_object_or_404(Feedback.objects.select_related("problem", "attempt", "run", "template"), pk=pk)
    return render(request, "teach/feedback.html", {"feedback": feedback})


@researcher_required
@require_http_methods(["GET"])
def template_list(request: HttpRequest) -> HttpResponse:
    template_ensure_defaults()
    return render(request, "teach/templates.html", {"templates": PromptTemplate.objects.all()})


@researcher_required
@require_http_methods(["GET", "POST"])
def template_edit(request: HttpRequest, name: str) -> HttpResponse:
    if name not in DEFAULT_TEMPLATES:
        return HttpResponse(status=404)
    template_ensure_defaults()
    latest = PromptTemplate.objects.filter(name=name).order_by("-version").first()
    form = TemplateForm(request.POST or None, initial={"system": latest.system, "user": latest.user})
    if request.method == "POST" and form.is_valid():
        try:
            saved = template_new_version(name=name, system=form.cleaned_data["system"], user_text=form.cleaned_data["user"],
                                         note=form.cleaned_data["note"], user=request.user)
        except (TemplateError, ValueError) as error:
            form.add_error("user", str(error))
        else:
            messages.success(request, f"Saved {saved}. New runs use it; earlier runs keep the version they used.")
            return redirect("teach:templates")
    return render(request, "teach/template_edit.html", {"form": form, "latest": latest, "name": name},
                  status=400 if form.errors else 200)


@researcher_required
@require_http_methods(["GET", "POST"])
def feedback_import_view(request: HttpRequest) -> HttpResponse:
    """Upload the papers' released feedback: it becomes a finished teacher run, ready for a review queue."""
    form = FeedbackImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            imported = feedback_import_upload(upload=form.cleaned_data["file"], format=form.cleaned_data["format"] or None,
                                              user=request.user, teacher_name=form.cleaned_data["teacher_name"])
        except IMPORT_ERRORS as error:
            form.add_error("file", f"Nothing was imported: {error}")
        else:
            for line in imported.report:
                messages.success(request, line)
            return redirect(imported.run)
    return render(request, "teach/import.html", {"form": form}, status=400 if form.errors else 200)
