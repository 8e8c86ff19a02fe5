"""Uploaded files: the one size limit (ERRATA_MAX_UPLOAD_MB) for every form and API field, and a file on disk to read."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError


def validate_upload_size(upload) -> None:
    """A Django validator: forms and DRF fields both run it and show its message beside the field."""
    limit_mb = settings.ERRATA_MAX_UPLOAD_MB
    if upload.size > limit_mb * 1024 * 1024:
        raise ValidationError(f"{upload.name} is larger than {limit_mb} MB (ERRATA_MAX_UPLOAD_MB)", code="too_large")


@contextmanager
def upload_on_disk(upload) -> Iterator[Path]:
    """The upload as a file under its own name (SALAM's collections and FAIR's rounds are told apart by it) in a
    folder of its own, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="errata-upload-") as folder:
        path = Path(folder) / Path(upload.name).name
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
        yield path
