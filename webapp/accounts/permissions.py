"""Role checks for pages (decorators) and for the REST API (DRF permission classes)."""

from __future__ import annotations

from functools import wraps

from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission


def researcher_required(view):
    """Only researchers and admins; the login middleware has already turned anonymous users away."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_researcher:
            raise PermissionDenied("This page is for researchers and admins.")
        return view(request, *args, **kwargs)

    return wrapper


class IsResearcher(BasePermission):
    """Researchers and admins, read and write. The default for every API endpoint."""

    message = "This endpoint is for researchers and admins."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and request.user.is_researcher)


class IsSignedIn(BasePermission):
    """Any signed-in user, any role (for endpoints every role needs, like one's own token)."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)
