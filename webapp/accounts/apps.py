"""App config for accounts: connects the signal that drops a saved user's cached copy, in every process."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "webapp.accounts"
    label = "accounts"

    def ready(self) -> None:
        from webapp.accounts import backends  # noqa: F401  (registers forget_cached_user)
