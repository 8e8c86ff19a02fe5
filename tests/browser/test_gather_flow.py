"""In a real browser: a researcher launches a gather run from the page and watches it reach 100% without reloading."""

from __future__ import annotations

import pytest

from tests.browser.test_import_flow import sign_in
from tests.fakeopenai import FakeOpenAI
from tests.webapp.gather.conftest import known_dataset
from webapp.endpoints.models import ModelEndpoint
from webapp.runs.models import Run

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_researcher_launches_a_gather_run_and_watches_it_finish(live_errata, browser_page, researcher):
    page = browser_page
    with FakeOpenAI(latency_s=0.15) as server:
        student = ModelEndpoint.objects.create(name="slow fake student", base_url=server.base_url, model_name="fake",
                                               as_student=True, max_concurrency=2)
        dataset = known_dataset(24)
        sign_in(page, live_errata, researcher.username)
        page.wait_for_url(f"{live_errata}/datasets/")
        page.goto(f"{live_errata}/gather/new/?dataset={dataset.pk}")
        page.select_option("select[name=student]", str(student.pk))
        page.click("button:has-text('Start the run')")
        page.wait_for_url("**/runs/*/")
        page.evaluate("window.notReloaded = true")
        # The bar moves while the run goes (the worker answers 2 at a time, 0.15 s each).
        page.wait_for_function("Number(document.querySelector('#run-progress').value) > 0", timeout=60_000)
        page.wait_for_selector("#run-status:has-text('Succeeded')", timeout=90_000)
        assert page.evaluate("document.querySelector('#run-progress').value") == 100
        assert page.inner_text("#run-percent") == "100%"
        assert page.evaluate("window.notReloaded") is True  # updated in place by htmx, never reloaded
        assert page.inner_text("#count-right") == "12" and page.inner_text("#count-wrong") == "12"
    run = Run.objects.get()
    assert run.progress_done == 24
    page.click("text=browse the mistakes")
    page.wait_for_selector("#results table")
    assert "12 answers" in page.inner_text("#results")
