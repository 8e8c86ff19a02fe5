"""ERRATA_MAX_UPLOAD_MB holds for every way in a file can come: the import page and API, training-set files, seeds."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from webapp.datasets.models import DatasetImport
from webapp.runs.models import Run
from webapp.train.models import TrainingSet

ONE_MB = 1024 * 1024


def upload(size: int) -> SimpleUploadedFile:
    return SimpleUploadedFile("big.jsonl", b"x" * size)


ENTRY_POINTS = {
    "import page": (lambda: reverse("datasets:import"), lambda f: {"files": [f], "split_rule": "auto", "seed": 0,
                                                                   "test_fraction": 0.2}, DatasetImport),
    "import API": (lambda: "/api/imports/", lambda f: {"files": [f]}, DatasetImport),
    "training-set file": (lambda: reverse("train:set_new"), lambda f: {"name": "f", "source": "file", "file": f,
                                                                       "validation_share": 0, "seed": 0}, TrainingSet),
    "seed import": (lambda: reverse("gather:import-seed"), lambda f: {"file": f}, Run),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
def test_a_file_over_the_limit_is_refused_by_name_and_nothing_is_created(entry, researcher_client, settings):
    settings.ERRATA_MAX_UPLOAD_MB = 1
    url, fields, model = ENTRY_POINTS[entry]
    response = researcher_client.post(url(), fields(upload(ONE_MB + 1)))
    assert response.status_code == 400
    assert b"big.jsonl is larger than 1 MB" in response.content
    assert not model.objects.exists()


def test_a_file_at_the_limit_gets_past_the_size_check(researcher_client, settings):
    settings.ERRATA_MAX_UPLOAD_MB = 1
    response = researcher_client.post("/api/imports/", {"files": [upload(ONE_MB)], "format": "nonsense"})
    assert response.status_code == 400
    assert set(response.json()) == {"format"}  # refused for its format only
