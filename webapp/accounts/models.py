"""The user model: Django's user plus one role."""

from django.contrib.auth.models import AbstractUser
from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    RESEARCHER = "researcher", "Researcher"
    ANNOTATOR = "annotator", "Annotator"


class User(AbstractUser):
    role = models.CharField(max_length=20, choices=Role.choices, default=Role.ANNOTATOR)

    @property
    def is_researcher(self) -> bool:
        """Researchers and admins may launch jobs and change data."""
        return self.is_active and (self.is_superuser or self.role in (Role.ADMIN, Role.RESEARCHER))

    @property
    def is_admin(self) -> bool:
        return self.is_active and (self.is_superuser or self.role == Role.ADMIN)
