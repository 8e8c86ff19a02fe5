"""The one size limit on uploaded files (ERRATA_MAX_UPLOAD_MB), for every form and API field that takes a file."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError


def validate_upload_size(upload) -> None:
    """A Django validator: forms and DRF fields both run it and show its message beside the field."""
    limit_mb = settings.ERRATA_MAX_UPLOAD_MB
    if upload.size > limit_mb * 1024 * 1024:
        raise ValidationError(f"{upload.name} is larger than {limit_mb} MB (ERRATA_MAX_UPLOAD_MB)", code="too_large")
