"""The comparison page and the API: statistics equal numbers worked out by hand from the 2x2 table; exports; every
signed-in user may read; model output is escaped."""

from __future__ import annotations

import csv
import io
import math

import pytest
from django.urls import reverse
from django.utils.html import escape

from tests.webapp.exams.conftest import exam_dataset, problem
from webapp.exams.models import ExamAnswer
from webapp.runs.models import Run

pytestmark = pytest.mark.django_db

Z = 1.959963984540054


def wilson(right: int, n: int) -> tuple[float, float]:
    p = right / n
    centre, half = p + Z * Z / (2 * n), Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (centre - half) / (1 + Z * Z / n), (centre + half) / (1 + Z * Z / n)


def newcombe(both_right: int, broken: int, fixed: int, both_wrong: int) -> tuple[float, float]:
    """Newcombe's (1998) method 10 for paired proportions, from the paper's formulas."""
    n = both_right + broken + fixed + both_wrong
    after, before = (both_right + fixed) / n, (both_right + broken) / n
    (l1, u1), (l2, u2) = wilson(both_right + fixed, n), wilson(both_right + broken, n)
    product = both_right * both_wrong - broken * fixed
    product = product - n / 2 if product > n / 2 else (0 if product >= 0 else product)
    phi = product / math.sqrt((both_right + broken) * (fixed + both_wrong) * (both_right + fixed) * (broken + both_wrong))
    d = after - before
    return (d - math.sqrt((after - l1) ** 2 + (u2 - before) ** 2 - 2 * phi * (after - l1) * (u2 - before)),
            d + math.sqrt((before - l2) ** 2 + (u1 - after) ** 2 - 2 * phi * (before - l2) * (u1 - after)))


def exam(dataset, name: str, right: set[int], *, count: int, excluded: set[int] = frozenset()) -> Run:
    """An exam run with a final answer on problems q0..q<count-1>, right on ``right``."""
    run = Run.objects.create(kind="exam", name=name, status="succeeded", config={"mode": "plain", "dataset_ids": [dataset.pk]})
    for i in range(count):
        ExamAnswer.objects.create(run=run, problem=problem(dataset, f"q{i}"), answer=str(i if i in right else -1),
                                  correct=i in right, samples=1, votes=1, excluded=i in excluded)
    return run


@pytest.fixture
def dataset(db):
    return exam_dataset({f"q{i}": ("apples" if i % 2 == 0 else "trains", str(i)) for i in range(30)})


def test_the_comparison_page_shows_the_hand_computed_statistics(annotator_client, dataset):
    before = exam(dataset, "baseline", {0, 1, 2, 3}, count=10)
    after = exam(dataset, "trained", {0, 1, 2, 4, 5, 6, 7, 8}, count=10)
    response = annotator_client.get(reverse("exams:compare"), {"before": before.pk, "after": after.pk})
    html = response.content.decode()
    # The 2x2 table: both right {0,1,2}, broken {3}, fixed {4,5,6,7,8}, both wrong {9}.
    low, high = newcombe(3, 1, 5, 1)
    # McNemar exact: 6 discordant pairs, 1 on the smaller side: p = 2 * (C(6,0) + C(6,1)) / 2^6 = 14/64.
    p = 2 * (math.comb(6, 0) + math.comb(6, 1)) / 2 ** 6
    assert response.status_code == 200
    assert escape(f"On the 10 problems both exams answered, accuracy went from 40.0% to 80.0% (+40.0 points, 95% interval "
            f"{100 * low:+.1f} to {100 * high:+.1f}). 5 fixed, 1 broken, 1 still wrong. McNemar's exact test: "
            f"p = {p:.3g}, not significant at the 5% level.") in html
    assert f"p = {p:.4g} on 6 problems that changed" in html
    comparison = response.context["comparison"]
    assert comparison.result.interval == pytest.approx((low, high), abs=1e-12)
    assert [row["problem"].external_id for row in comparison.lists["fixed"]] == ["q4", "q5", "q6", "q7", "q8"]
    assert [row["problem"].external_id for row in comparison.lists["broken"]] == ["q3"]
    assert [row["problem"].external_id for row in comparison.lists["still_wrong"]] == ["q9"]
    # Per task: apples (even) {0,2} -> {0,2,4,6,8}: 2/5 -> 5/5; trains (odd) {1,3} -> {1,5,7}: 2/5 -> 3/5.
    tasks = {t["task"]: (t["before"].correct, t["after"].correct, t["before"].n) for t in comparison.tasks}
    assert tasks == {"apples": (2, 5, 5), "trains": (2, 3, 5), "overall": (4, 8, 10)}
    assert '<td class="num">+60.0</td>' in html and '<td class="num">+20.0</td>' in html and "svg" in html and 'class="bar series-1"' in html
    assert reverse("exams:trace", args=[ExamAnswer.objects.get(run=after, problem__external_id="q4").pk]) in html


@pytest.mark.parametrize("swap,verdict", [(False, "a significant improvement"), (True, "a significant drop")])
def test_a_large_change_is_called_significant(annotator_client, dataset, swap, verdict):
    before = exam(dataset, "baseline", set(range(10)), count=30)
    after = exam(dataset, "trained", set(range(22)), count=30)
    if swap:
        before, after = after, before
    html = annotator_client.get(reverse("exams:compare"), {"before": before.pk, "after": after.pk}).content.decode()
    p = 2 * 1 / 2 ** 12  # 12 discordant, none the other way
    assert escape(f"McNemar's exact test: p = {p:.3g}, {verdict} at the 5% level.") in html


def test_excluded_answers_are_left_out_of_the_comparison(annotator_client, dataset):
    before = exam(dataset, "baseline", {0, 1}, count=4, excluded={0})
    after = exam(dataset, "trained", {0, 1, 2}, count=4)
    comparison = annotator_client.get(reverse("exams:compare"), {"before": before.pk, "after": after.pk}).context["comparison"]
    assert comparison.result.n == 3 and comparison.result.fixed == (problem(dataset, "q2").pk,)


def test_the_comparison_form_without_exams_and_with_a_wrong_id(annotator_client, dataset):
    assert annotator_client.get(reverse("exams:compare")).status_code == 200
    assert annotator_client.get(reverse("exams:compare"), {"before": 999, "after": 998}).status_code == 400


def test_the_api_reads_results_answers_and_the_comparison(annotator_client, dataset):
    before = exam(dataset, "baseline", {0, 1, 2, 3}, count=10)
    after = exam(dataset, "trained", {0, 1, 2, 4, 5, 6, 7, 8}, count=10)
    listed = annotator_client.get("/api/exams/").json()
    assert {row["id"] for row in listed["results"]} == {before.pk, after.pk}
    detail = annotator_client.get(f"/api/exams/{after.pk}/").json()
    assert detail["results"]["results"]["overall"]["correct"] == 8 and detail["results"]["results"]["overall"]["n"] == 10
    low, high = wilson(8, 10)
    assert detail["results"]["results"]["overall"]["low"] == pytest.approx(low)
    wrong = annotator_client.get(f"/api/exams/{after.pk}/answers/", {"verdict": "wrong"}).json()
    assert sorted(row["problem_external_id"] for row in wrong["results"]) == ["q3", "q9"]
    compared = annotator_client.get("/api/exams/compare/", {"before": before.pk, "after": after.pk}).json()
    assert (compared["difference"], compared["mcnemar_p"]) == (pytest.approx(0.4), pytest.approx(14 / 64))
    assert compared["fixed"] == [problem(dataset, f"q{i}").pk for i in (4, 5, 6, 7, 8)]
    assert annotator_client.get("/api/exams/compare/", {"before": before.pk}).status_code == 400


def test_exports_hold_every_answer_and_defuse_formulas(annotator_client, dataset):
    run = exam(dataset, "baseline", {0}, count=2)
    ExamAnswer.objects.filter(run=run, problem__external_id="q1").update(answer="=HYPERLINK(\"http://x\")")
    response = annotator_client.get(reverse("exams:export", args=[run.pk]), {"format": "csv"})
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert response["Content-Disposition"] == f'attachment; filename="exam-{run.pk}.csv"'
    assert [(r["external_id"], r["correct"]) for r in rows] == [("q0", "True"), ("q1", "False")]
    assert rows[1]["answer"] == "'=HYPERLINK(\"http://x\")"
    data = annotator_client.get(reverse("exams:export", args=[run.pk]), {"format": "json"}).json()
    assert data["results"]["overall"]["correct"] == 1 and len(data["answers"]) == 2
    assert data["answers"][1]["answer"] == "=HYPERLINK(\"http://x\")"  # JSON is data, not a spreadsheet
    api = annotator_client.get(f"/api/exams/{run.pk}/export/", {"as": "csv"})
    assert b"external_id" in b"".join(api.streaming_content)
    assert annotator_client.get(reverse("exams:export", args=[run.pk]), {"format": "xml"}).status_code == 400


def test_model_output_is_escaped_on_the_report(annotator_client, dataset):
    run = exam(dataset, "baseline", {0}, count=1)
    ExamAnswer.objects.filter(run=run).update(answer="<b>7</b>", guidance="<script>alert(1)</script>")
    html = annotator_client.get(reverse("exams:report", args=[run.pk])).content.decode()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "&lt;b&gt;7" in html


def test_the_list_page_links_each_report_and_offers_a_comparison(annotator_client, dataset):
    before = exam(dataset, "baseline", {0}, count=2)
    after = exam(dataset, "trained", {0, 1}, count=2)
    html = annotator_client.get(reverse("exams:list")).content.decode()
    assert reverse("exams:report", args=[before.pk]) in html and reverse("exams:report", args=[after.pk]) in html
    assert reverse("exams:new") not in html  # annotators read, researchers launch
    assert 'action="/exams/compare/"' in html
