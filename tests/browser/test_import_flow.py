"""In a real browser: sign in, upload a GSM8K file, watch the import finish, browse and search the problems."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, SHARED
from tests.webapp.datasets.helpers import write_gsm8k

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def sign_in(page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/datasets/")
    assert "/accounts/login/" in page.url  # anonymous visitors are sent to sign in
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")


def test_researcher_imports_gsm8k_through_the_page_and_browses_it(live_errata, browser_page, researcher, tmp_path):
    page = browser_page
    real_file = SHARED / "datasets" / "gsm8k" / "test.jsonl"
    if real_file.exists():
        path, expected, word = real_file, 1319, "ducks"
    else:  # a user's clone has no ../shared: Errata's own generated file; "117" is in two rows (a question, a gold)
        path, expected, word = write_gsm8k(tmp_path / "test.jsonl", 120), 120, "117"
    sign_in(page, live_errata, researcher.username)
    page.wait_for_url(f"{live_errata}/datasets/")
    page.click("text=Import your first benchmark file")

    page.set_input_files("input[name=files]", str(path))
    page.click("button:has-text('Upload and import')")
    page.wait_for_url("**/datasets/imports/*/")
    page.wait_for_selector("#import-status .status.succeeded", timeout=90_000)
    assert page.inner_text("#added").replace(",", "") == str(expected)
    page.screenshot(path=str(tmp_path / "import-done.png"))

    page.click("text=Browse gsm8k test")
    page.wait_for_selector("table.problems")
    assert f"{expected:,} problems" in page.inner_text("#results")
    page.keyboard.press("/")  # the search shortcut
    page.keyboard.type(word)
    page.wait_for_function("document.querySelector('#results').innerText.includes('matching')")
    rows = page.locator("table.problems tbody tr")
    assert 0 < rows.count() < expected
    assert word in rows.first.inner_text().lower()
    assert f"q={word}" in page.url  # the search is in the address, so it can be shared


def test_a_bad_file_shows_where_it_is_wrong_in_the_page(live_errata, browser_page, researcher, tmp_path):
    page = browser_page
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "fine", "answer": "1 + 1 = 2\\n#### 2"}\n{"question": "cut off", "answ')
    sign_in(page, live_errata, researcher.username)
    page.goto(f"{live_errata}/datasets/import/")
    page.set_input_files("input[name=files]", str(bad))
    page.click("button:has-text('Upload and import')")
    page.wait_for_selector("#import-status .status.failed", timeout=90_000)
    error = page.inner_text("#import-error")
    assert "broken.jsonl" in error and "line 2" in error
    assert "Nothing was imported" in page.inner_text("#import-status")
