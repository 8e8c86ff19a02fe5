"""The home page (where the user is in the loop) and a health check for load balancers."""

from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from webapp.core.selectors import current_step, loop_steps


@require_http_methods(["GET"])
def home(request: HttpRequest) -> HttpResponse:
    steps = loop_steps(request.user)
    return render(request, "core/home.html", {"steps": steps, "next_step": current_step(steps)})


@login_not_required
@require_http_methods(["GET"])
def health(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
