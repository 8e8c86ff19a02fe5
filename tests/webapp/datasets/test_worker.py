"""An upload is imported by a real Celery worker process, on whichever broker the settings name."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from tests.conftest import wait_for
from tests.webapp.datasets.helpers import gsm8k_lines
from webapp.datasets.models import DatasetImport, ImportStatus


@pytest.mark.slow
def test_a_real_worker_imports_an_uploaded_file(client, researcher, celery_worker_process):
    client.force_login(researcher)
    body = ("\n".join(gsm8k_lines(30)) + "\n").encode()
    response = client.post(reverse("datasets:import"), {"files": [SimpleUploadedFile("worker.jsonl", body)],
                                                        "split_rule": "auto", "seed": 0, "test_fraction": 0.2})
    assert response.status_code == 302
    job = DatasetImport.objects.get()

    def finished():
        job.refresh_from_db()
        return job.is_finished

    wait_for(lambda: finished() or celery_worker_process.poll() is not None, timeout=90, what="the import")
    assert celery_worker_process.poll() is None, celery_worker_process.log_path.read_text()
    assert job.status == ImportStatus.SUCCEEDED, job.error or celery_worker_process.log_path.read_text()
    assert job.problems_added == 30 and job.dataset.problems.count() == 30
