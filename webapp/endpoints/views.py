"""Endpoint pages: list, register, edit, detail with the test-connection button."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.permissions import researcher_required
from webapp.endpoints.forms import ModelEndpointForm
from webapp.endpoints.models import ModelEndpoint
from webapp.endpoints.services import endpoint_check_connection


@researcher_required
@require_http_methods(["GET"])
def endpoint_list(request: HttpRequest) -> HttpResponse:
    return render(request, "endpoints/list.html", {"endpoints": ModelEndpoint.objects.all()})


@researcher_required
@require_http_methods(["GET"])
def endpoint_detail(request: HttpRequest, pk: int) -> HttpResponse:
    return render(request, "endpoints/detail.html", {"endpoint": get_object_or_404(ModelEndpoint, pk=pk)})


@researcher_required
@require_http_methods(["GET", "POST"])
def endpoint_edit(request: HttpRequest, pk: int | None = None) -> HttpResponse:
    endpoint = get_object_or_404(ModelEndpoint, pk=pk) if pk else ModelEndpoint(created_by=request.user)
    form = ModelEndpointForm(request.POST or None, instance=endpoint)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save()
        messages.success(request, f"Saved {endpoint.name}. Test the connection to see it answer.")
        return redirect(endpoint)
    status = 400 if form.errors else 200
    return render(request, "endpoints/form.html", {"form": form, "endpoint": endpoint}, status=status)


@researcher_required
@require_POST
def endpoint_test(request: HttpRequest, pk: int) -> HttpResponse:
    endpoint = get_object_or_404(ModelEndpoint, pk=pk)
    result = endpoint_check_connection(endpoint=endpoint)
    endpoint.refresh_from_db()
    context = {"endpoint": endpoint, "result": result}
    if request.htmx:
        return render(request, "endpoints/detail.html#check", context)
    return render(request, "endpoints/detail.html", context)
