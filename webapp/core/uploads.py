"""Uploaded files: the one size limit (ERRATA_MAX_UPLOAD_MB) for every form and API field, saving one to disk, its hash."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.text import get_valid_filename


def validate_upload_size(upload) -> None:
    """A Django validator: forms and DRF fields both run it and show its message beside the field."""
    limit_mb = settings.ERRATA_MAX_UPLOAD_MB
    if upload.size > limit_mb * 1024 * 1024:
        raise ValidationError(f"{upload.name} is larger than {limit_mb} MB (ERRATA_MAX_UPLOAD_MB)", code="too_large")


def upload_save(upload, folder: Path) -> Path:
    """Write the upload into ``folder`` under its own name, made safe (SALAM's collections and FAIR's rounds are
    told apart by their names), chunk by chunk."""
    path = folder / get_valid_filename(Path(upload.name).name or "upload")
    with path.open("wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    return path


@contextmanager
def upload_on_disk(upload) -> Iterator[Path]:
    """The upload as a file (``upload_save``) in a folder of its own, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="errata-upload-") as folder:
        yield upload_save(upload, Path(folder))


def file_sha256(path: Path) -> str:
    """The file's SHA-256, read in chunks (an upload may be as large as ERRATA_MAX_UPLOAD_MB)."""
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
