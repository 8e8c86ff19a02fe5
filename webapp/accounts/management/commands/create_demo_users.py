"""Create one demo user per role and print their sign-in (development machines only)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from webapp.accounts.services import demo_users_ensure


class Command(BaseCommand):
    help = "Create or reset the demo users admin, researcher and annotator (needs DEBUG=1 and ERRATA_DEMO=1)."

    def add_arguments(self, parser):
        parser.add_argument("--password", help="Password for all three (default: a random one, printed).")

    def handle(self, *args, password=None, **options):
        if not (settings.DEBUG and settings.ERRATA_DEMO):
            raise CommandError("Demo users have known passwords: run with DEBUG=1 ERRATA_DEMO=1 only.")
        for username, role, secret in demo_users_ensure(password=password):
            self.stdout.write(f"  {role:<11} user {username!r:<13} password {secret!r}")
