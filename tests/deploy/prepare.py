"""Set-up for the multi-process test, run in a subprocess on that test's own database: migrate, and a researcher
who signs in through the login page like anyone else."""

from __future__ import annotations

import os
import sys


def main(username: str, password: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from webapp.accounts.services import user_create

    call_command("migrate", "--noinput", verbosity=0)
    user_create(username=username, role="researcher", password=password)


if __name__ == "__main__":
    main(*sys.argv[1:3])
