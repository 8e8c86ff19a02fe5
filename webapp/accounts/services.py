"""Writes for accounts: creating users with a role, signed-in sessions, API tokens, the demo users."""

from __future__ import annotations

import secrets
from importlib import import_module

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.db import transaction
from rest_framework.authtoken.models import Token

from webapp.accounts.models import Role, User

DEMO_USERS = (
    ("admin", Role.ADMIN),
    ("researcher", Role.RESEARCHER),
    ("annotator", Role.ANNOTATOR),
)


@transaction.atomic
def user_create(*, username: str, role: str, password: str | None = None, email: str = "") -> User:
    """A user with ``role``; admins can use the Django admin. Without a password the account cannot sign in."""
    user = User(username=username, email=email, role=role)
    user.is_staff = user.is_superuser = role == Role.ADMIN
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    return user


def user_token_rotate(*, user: User) -> str:
    """Replace the user's API token with a fresh one and return its key (shown once)."""
    Token.objects.filter(user=user).delete()
    return Token.objects.create(user=user).key


@transaction.atomic
def demo_users_ensure(*, password: str | None = None) -> list[tuple[str, str, str]]:
    """Create (or reset) one demo user per role; returns (username, role, password) to print."""
    password = password or secrets.token_urlsafe(9)
    created = []
    for username, role in DEMO_USERS:
        user = User.objects.filter(username=username).first() or user_create(username=username, role=role)
        user.role, user.is_staff, user.is_superuser = role, role == Role.ADMIN, role == Role.ADMIN
        user.set_password(password)
        user.save()
        created.append((username, role, password))
    return created


def session_sign_in(user: User) -> str:
    """A new signed-in session for ``user``, as the sign-in page makes one; returns the ``sessionid`` cookie's value.

    For programs that speak to Errata as a user without a password (benchmarks, multi-process tests).
    """
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: settings.AUTHENTICATION_BACKENDS[0],
                    HASH_SESSION_KEY: user.get_session_auth_hash()})
    session.create()
    return session.session_key
