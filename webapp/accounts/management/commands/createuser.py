"""Create a user with a role from the shell; the password never comes on the command line (shell history, ps)."""

import getpass
import os
import sys

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from webapp.accounts.models import Role, User
from webapp.accounts.services import user_create


class Command(BaseCommand):
    help = ("Create a user with a role. The password is asked for on a terminal, or read from the environment "
            "variable --password-from-env names; --no-password makes an account that cannot sign in yet.")

    def create_parser(self, prog_name, subcommand, **kwargs):
        # Without this, argparse would take `--password SECRET` for --password-from-env: a secret in argv after all.
        return super().create_parser(prog_name, subcommand, allow_abbrev=False, **kwargs)

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--email", default="")
        source = parser.add_mutually_exclusive_group()
        source.add_argument("--password-from-env", metavar="VAR", help="the environment variable holding the password")
        source.add_argument("--no-password", action="store_true",
                            help="no password for now (set one later with manage.py changepassword)")

    def handle(self, *args, username, role, email, password_from_env, no_password, **options):
        if User.objects.filter(username=username).exists():
            raise CommandError(f"a user named {username!r} exists already: choose another name, or change that "
                               f"user in the admin site (its password: manage.py changepassword {username})")
        unsaved = User(username=username, email=email, role=role)
        try:
            unsaved.full_clean(exclude=["password"])  # a bad name or email is refused before a password is asked
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from None
        if no_password:
            password = None
        elif password_from_env:
            password = password_from_environment(password_from_env, unsaved)
        elif sys.stdin.isatty():
            password = self.ask_password(unsaved)
        else:
            raise CommandError("no terminal to ask for the password: use --password-from-env VAR, or --no-password "
                               "and set it later with manage.py changepassword")
        user = user_create(username=username, role=role, password=password, email=email)
        self.stdout.write(f"Created {user.get_role_display().lower()} {user.username!r}.")
        if password is None:
            self.stdout.write(f"It cannot sign in until it has a password: manage.py changepassword {user.username}")

    def ask_password(self, user: User) -> str:
        """Ask twice on the terminal until the answers match and pass the password validators."""
        while True:
            password = getpass.getpass("Password: ")
            if password != getpass.getpass("Password (again): "):
                self.stderr.write("The two passwords differ; try again.")
                continue
            try:
                validate_password(password, user)
            except ValidationError as error:
                self.stderr.write(" ".join(error.messages))
                continue
            return password


def password_from_environment(name: str, user: User) -> str:
    password = os.environ.get(name, "")
    if not password:
        raise CommandError(f"the environment variable {name} is not set or empty: set it to the password first")
    try:
        validate_password(password, user)
    except ValidationError as error:
        raise CommandError(f"the password in {name}: {' '.join(error.messages)}") from None
    return password
