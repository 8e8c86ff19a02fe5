"""manage.py createuser: a user with a role; the password from the environment or a terminal, never from argv."""

from __future__ import annotations

import getpass
import io
import sys

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import PASSWORD
from webapp.accounts.models import User
from webapp.accounts.services import user_create

pytestmark = pytest.mark.django_db


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def quick_hashes(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # PBKDF2 takes ~0.3 s a hash


@pytest.fixture
def no_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO())  # as under cron, systemd or a pipe


def createuser(*argv: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("createuser", *argv, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_it_creates_a_user_with_the_role_and_the_password_from_the_environment(monkeypatch, client):
    monkeypatch.setenv("NEW_USER_PASSWORD", PASSWORD)
    out, _ = createuser("rita", "--role", "researcher", "--email", "rita@example.org",
                        "--password-from-env", "NEW_USER_PASSWORD")
    assert out.strip() == "Created researcher 'rita'."
    rita = User.objects.get(username="rita")
    assert (rita.role, rita.email, rita.is_researcher, rita.is_admin) == ("researcher", "rita@example.org", True, False)
    assert client.login(username="rita", password=PASSWORD)


def test_an_admin_gets_the_admin_site(monkeypatch):
    monkeypatch.setenv("NEW_USER_PASSWORD", PASSWORD)
    createuser("ada", "--role", "admin", "--password-from-env", "NEW_USER_PASSWORD")
    ada = User.objects.get(username="ada")
    assert ada.is_admin and ada.is_staff


def test_without_a_password_the_account_cannot_sign_in_and_it_says_how_to_set_one(no_terminal):
    out, _ = createuser("anna", "--role", "annotator", "--no-password")
    assert not User.objects.get(username="anna").has_usable_password()
    assert "manage.py changepassword anna" in out


def test_on_a_terminal_it_asks_until_two_answers_match_and_pass_the_validators(monkeypatch):
    monkeypatch.setattr(sys, "stdin", Terminal())
    answers = ["first-try-words", "other-words", "anna123", "anna123", PASSWORD, PASSWORD]
    monkeypatch.setattr(getpass, "getpass", lambda prompt: answers.pop(0))
    _, err = createuser("anna", "--role", "annotator")
    assert "differ" in err
    assert "too short" in err  # Django's password validators, as changepassword applies them
    assert answers == [] and User.objects.get(username="anna").check_password(PASSWORD)


def test_without_a_terminal_or_an_option_it_refuses_rather_than_guess(no_terminal):
    with pytest.raises(CommandError, match="--password-from-env VAR, or --no-password"):
        createuser("anna", "--role", "annotator")
    assert not User.objects.exists()


def test_a_password_on_the_command_line_is_refused_not_taken_for_a_variable_name(no_terminal):
    # argparse would otherwise read `--password X` as `--password-from-env X`, an abbreviation.
    with pytest.raises(CommandError, match="unrecognized arguments: --password"):
        createuser("anna", "--role", "annotator", "--password", PASSWORD)
    assert not User.objects.exists()


@pytest.mark.parametrize("value,message", [
    (None, "NEW_USER_PASSWORD is not set or empty"),
    ("", "NEW_USER_PASSWORD is not set or empty"),
    ("password", "the password in NEW_USER_PASSWORD: This password is too common."),
])
def test_a_missing_or_weak_password_in_the_environment_is_refused(monkeypatch, value, message):
    monkeypatch.delenv("NEW_USER_PASSWORD", raising=False)
    if value is not None:
        monkeypatch.setenv("NEW_USER_PASSWORD", value)
    with pytest.raises(CommandError, match=message):
        createuser("rita", "--role", "researcher", "--password-from-env", "NEW_USER_PASSWORD")
    assert not User.objects.exists()


def test_an_existing_username_is_refused_and_left_as_it_was(no_terminal):
    user_create(username="rita", role="researcher", password=PASSWORD)
    with pytest.raises(CommandError, match="'rita' exists already: .*manage.py changepassword rita"):
        createuser("rita", "--role", "admin", "--no-password")
    rita = User.objects.get(username="rita")
    assert rita.role == "researcher" and rita.check_password(PASSWORD)


def test_an_unknown_role_is_refused_with_the_roles_there_are(no_terminal):
    with pytest.raises(CommandError, match="invalid choice: 'boss' \\(choose from 'admin', 'researcher', 'annotator'\\)"):
        createuser("rita", "--role", "boss", "--no-password")
    assert not User.objects.exists()


@pytest.mark.parametrize("argv,message", [
    (["rita smith", "--role", "researcher"], "Enter a valid username"),
    (["rita", "--role", "researcher", "--email", "rita-at-example"], "Enter a valid email address"),
])
def test_a_bad_name_or_email_is_refused_before_a_password_is_asked(no_terminal, argv, message):
    with pytest.raises(CommandError, match=message):
        createuser(*argv, "--no-password")
    assert not User.objects.exists()
