"""Teacher runs against real HTTP model servers whose replies are well-formed, malformed or adversarial."""

from __future__ import annotations

import json

import pytest

from pipeline.benchmarks.records import ProblemRecord
from tests.fakeopenai import FakeOpenAI
from webapp.datasets.services import problems_add
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunKind, RunStatus
from webapp.teach.models import Feedback, PromptTemplate
from webapp.teach.services import TeachLaunchError, teach_execute, teach_launch
from webapp.teach.templates_store import template_new_version

pytestmark = pytest.mark.django_db

SALAM_ASKS, LEMA_ASKS = "Explain why this answer is wrong", "The solution ends in a wrong answer"
FAIR_FEEDBACK_ASKS, FAIR_RATIONALE_ASKS = "Write feedback for the", "Solve this question step by step"
REVIEW_ASKS, LBT_ASKS = "Your colleague's solution", "Write a complete worked solution"
GSI_HELP_ASKS, REVISE_ASKS = "Point out the first step", "Use this feedback to write a corrected solution"


@pytest.fixture(scope="module")
def server_a():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="module")
def server_b():
    with FakeOpenAI() as server:
        yield server


def teacher(server, name: str) -> ModelEndpoint:
    return ModelEndpoint.objects.create(name=name, base_url=server.base_url, model_name="fake", as_student=True,
                                        as_teacher=True, max_concurrency=4)


@pytest.fixture
def mistakes(db, server_a):
    """Three problems (gold 777, 888, 999), each answered wrong once by a student on server A."""
    records = [ProblemRecord(external_id=f"m{i}", question=f"Problem {i}: how many?", gold_answer=str(gold), split="train")
               for i, gold in enumerate((777, 888, 999))]
    dataset, _ = problems_add(name="teach set", benchmark="gsm8k", answer_format="number", records=records)
    student = teacher(server_a, "student")
    run = Run.objects.create(kind=RunKind.GATHER, name="g", config={}, status=RunStatus.SUCCEEDED)
    for problem in dataset.problems.all():
        Attempt.objects.create(run=run, problem=problem, endpoint=student, model_name="fake", prompt="[]",
                               raw_output="Step 1: 2 + 2 = 5.\nThe answer is 5.", extracted="5", correct=False, scorer="numeric")
    return run


def run_teacher(user, **config) -> Run:
    # Off by default: the fake servers' scripted replies change from test to test.
    run = teach_launch(user=user, data={"use_cache": False, **config})
    teach_execute(run_id=run.pk)
    run.refresh_from_db()
    return run


def test_salam_feedback_is_parsed_and_never_shows_the_teacher_the_answer(researcher, mistakes, server_a):
    server_a.configure(replies=[[SALAM_ASKS, 'Sure! ```json\n{"reason": "Added wrong.", "guideline": "Check each sum."}\n```']])
    run = run_teacher(researcher, method="salam", teacher_endpoint_ids=[teacher(server_a, "t1").pk], gather_run_id=mistakes.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    rows = list(Feedback.objects.filter(run=run))
    assert len(rows) == 3 and all(row.parse_ok for row in rows)
    assert rows[0].fields == {"reason": "Added wrong.", "guideline": "Check each sum."}
    assert json.loads(rows[0].text) == rows[0].fields  # SALAM trains on the JSON object
    assert not any(gold in row.prompt for row in rows for gold in ("777", "888", "999"))


def test_a_reply_that_is_not_json_is_kept_as_a_parse_failure(researcher, mistakes, server_a):
    server_a.configure(replies=[[SALAM_ASKS, "I would rather not say."]])
    run = run_teacher(researcher, method="salam", teacher_endpoint_ids=[teacher(server_a, "t1").pk], gather_run_id=mistakes.pk)
    assert run.status == RunStatus.SUCCEEDED  # a malformed reply is data, not a crash
    row = Feedback.objects.filter(run=run).first()
    assert row.parse_ok is False and "JSON" in row.parse_error and row.raw_output == "I would rather not say."
    assert run.counts["parse_failures"] == 3


def test_lema_corrections_are_checked_against_the_gold_answer(researcher, mistakes, server_a):
    server_a.configure(replies=[[LEMA_ASKS, "Incorrect Step: Step 1.\nExplanation: 2 + 2 is 4.\n"
                                            "Correct Solution: Step 1: 2 + 2 = 4. The answer is 888."]])
    run = run_teacher(researcher, method="lema", teacher_endpoint_ids=[teacher(server_a, "t1").pk], gather_run_id=mistakes.pk)
    checks = {row.problem.gold_answer: row.auto_check for row in Feedback.objects.filter(run=run).select_related("problem")}
    assert checks == {"777": False, "888": True, "999": False}  # kept only when the corrected answer is the gold
    row = Feedback.objects.get(run=run, problem__gold_answer="888")
    assert row.fields["incorrect_step"] == "Step 1." and row.corrected_answer == "888"


def test_fair_committee_peer_review_follows_the_mean_above_three_rule(researcher, mistakes, server_a, server_b):
    common = [[FAIR_FEEDBACK_ASKS, "You added wrong."], [FAIR_RATIONALE_ASKS, "2 + 2 = 4.\nAnswer: 4"]]
    server_a.configure(replies=common + [[REVIEW_ASKS, "Clear and right. [4/5]"]])
    server_b.configure(replies=common + [[REVIEW_ASKS, "Weak. Score: [2] ... final: [2]"]])
    t1, t2, t3 = teacher(server_a, "t1"), teacher(server_a, "t2"), teacher(server_b, "t3")
    run = run_teacher(researcher, method="fair", teacher_endpoint_ids=[t1.pk, t2.pk, t3.pk], gather_run_id=mistakes.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    row = {r.teacher_name: r for r in Feedback.objects.filter(run=run, problem__gold_answer="777")}
    # t1's rationale: t2 says 4, t3 says 2 -> mean 3, not above 3: rejected.
    assert row["t1"].peer_scores == {"t2": 4, "t3": 2} and row["t1"].peer_mean == 3 and row["t1"].peer_accepted is False
    # t3's rationale: t1 and t2 say 4 -> mean 4: accepted.
    assert row["t3"].peer_scores == {"t1": 4, "t2": 4} and row["t3"].peer_accepted is True
    assert row["t1"].fields == {"feedback": "You added wrong.", "rationale": "2 + 2 = 4.\nAnswer: 4"}


def test_fair_scores_that_do_not_parse_count_for_nothing(researcher, mistakes, server_a, server_b):
    common = [[FAIR_FEEDBACK_ASKS, "Feedback."], [FAIR_RATIONALE_ASKS, "Rationale."]]
    server_a.configure(replies=common + [[REVIEW_ASKS, "I give it [six]."]])
    server_b.configure(replies=common + [[REVIEW_ASKS, "No score at all."]])
    run = run_teacher(researcher, method="fair", teacher_endpoint_ids=[teacher(server_a, "t1").pk, teacher(server_b, "t2").pk],
                      gather_run_id=mistakes.pk)
    rows = list(Feedback.objects.filter(run=run))
    assert rows and all(r.peer_mean is None and r.peer_accepted is False for r in rows)
    assert all(set(r.peer_scores.values()) == {None} for r in rows)


def test_gsi_teacher_help_then_the_student_revises_and_is_scored(researcher, mistakes, server_a):
    server_a.configure(replies=[[GSI_HELP_ASKS, "Your first step adds wrong."], [REVISE_ASKS, "2 + 2 = 4, so the answer is 999. The answer is 999."]])
    run = run_teacher(researcher, method="gsi", teacher_endpoint_ids=[teacher(server_a, "t1").pk], gather_run_id=mistakes.pk)
    assert run.status == RunStatus.SUCCEEDED, run.error
    checks = {row.problem.gold_answer: row.auto_check for row in Feedback.objects.filter(run=run).select_related("problem")}
    assert checks == {"777": False, "888": False, "999": True}
    assert Feedback.objects.filter(run=run).first().fields["correction"] == "Your first step adds wrong."


def test_lbt_rationales_for_each_problem(researcher, mistakes, server_a):
    server_a.configure(replies=[[LBT_ASKS, "Count them one by one.\n[[Final Answer]]:\n777"]])
    dataset_id = Attempt.objects.first().problem.dataset_id
    run = run_teacher(researcher, method="lbt", teacher_endpoint_ids=[teacher(server_a, "t1").pk], dataset_id=dataset_id,
                      split="train", samples=2)
    rows = list(Feedback.objects.filter(run=run).select_related("problem"))
    assert len(rows) == 6 and all(row.attempt is None for row in rows)
    assert {(r.problem.gold_answer, r.auto_check) for r in rows} == {("777", True), ("888", False), ("999", False)}


def test_a_second_execution_asks_for_nothing_already_recorded(researcher, mistakes, server_a):
    server_a.configure(replies=[[SALAM_ASKS, '{"reason": "r", "guideline": "g"}']])
    run = run_teacher(researcher, method="salam", teacher_endpoint_ids=[teacher(server_a, "t1").pk], gather_run_id=mistakes.pk,
                      use_cache=False)
    Feedback.objects.filter(run=run, problem__gold_answer="888").delete()
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED)
    before = sum(server_a.stats()["received"].values())
    teach_execute(run_id=run.pk)
    assert sum(server_a.stats()["received"].values()) - before == 1
    assert Feedback.objects.filter(run=run).count() == 3


def test_the_budget_stops_the_run_cleanly(researcher, mistakes, server_a):
    server_a.configure(replies=[[SALAM_ASKS, '{"reason": "r", "guideline": "g"}']])
    expensive = teacher(server_a, "pricey")
    expensive.price_in_per_1k = expensive.price_out_per_1k = 100
    expensive.save()
    run = run_teacher(researcher, method="salam", teacher_endpoint_ids=[expensive.pk], gather_run_id=mistakes.pk,
                      budget_usd=0.01, decoding={"max_tokens": 64})
    assert run.status == RunStatus.CANCELLED and "budget" in run.error
    assert Feedback.objects.filter(run=run).count() == 0  # stopped before paying for what it could not afford


@pytest.mark.parametrize("changes,message", [
    ({"method": "socratic"}, "method must be one of"),
    ({"teacher_endpoint_ids": []}, "at least one teacher"),
    ({"method": "fair"}, "at least two teachers"),
    ({"samples": 0}, "samples must be"),
    ({"decoding": {"n": 2}}, "samples rather than n"),
    ({"gather_run_id": None}, "exactly one source"),
])
def test_bad_configurations_are_refused(researcher, mistakes, server_a, changes, message):
    config = {"method": "salam", "teacher_endpoint_ids": [teacher(server_a, "t1").pk], "gather_run_id": mistakes.pk, **changes}
    with pytest.raises(TeachLaunchError, match=message):
        teach_launch(user=researcher, data=config)


def test_a_run_records_the_template_version_it_used(researcher, mistakes, server_a):
    server_a.configure(replies=[[SALAM_ASKS, '{"reason": "r", "guideline": "g"}']])
    base = PromptTemplate.objects.filter(name="salam_feedback").first() or None
    edited = template_new_version(name="salam_feedback", system="Be brief.", user_text=(
        "A student got the following question wrong.\n{question}\nTheir answer: {student_solution}\n"
        "Explain why this answer is wrong, as JSON with reason and guideline."), note="shorter")
    run = run_teacher(researcher, method="salam", teacher_endpoint_ids=[teacher(server_a, "t1").pk], gather_run_id=mistakes.pk)
    assert run.config["template_versions"]["salam_feedback"] == edited.version == 2
    assert Feedback.objects.filter(run=run, template=edited).count() == 3
    assert "Be brief." in Feedback.objects.filter(run=run).first().prompt
    assert base is None  # the defaults were stored as version 1 on first use


def test_an_edited_template_with_an_unknown_placeholder_is_refused(db):
    with pytest.raises(ValueError, match="answer_key"):
        template_new_version(name="salam_feedback", system="", user_text="{question} {answer_key}")
