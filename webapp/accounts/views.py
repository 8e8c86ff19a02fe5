"""Account pages: the profile with the user's role and API token."""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts.services import user_token_rotate


@require_http_methods(["GET"])
def profile(request: HttpRequest) -> HttpResponse:
    return render(request, "accounts/profile.html", {"has_token": hasattr(request.user, "auth_token")})


@require_POST
def token_rotate(request: HttpRequest) -> HttpResponse:
    key = user_token_rotate(user=request.user)
    messages.success(request, "A new API token was made. Copy it now: it is not shown again.")
    return render(request, "accounts/profile.html", {"has_token": True, "new_token": key})


@require_POST
def token_revoke(request: HttpRequest) -> HttpResponse:
    if hasattr(request.user, "auth_token"):
        request.user.auth_token.delete()
    messages.info(request, "Your API token was revoked.")
    return redirect("accounts:profile")
