"""The contamination guard and the trace: a checkpoint trained on approved feedback is examined; a planted copy of a
training question is flagged (and left out when asked); from its answer the page leads back to the review and the
mistake it was trained on."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from pipeline.benchmarks.records import ProblemRecord
from pipeline.seeds.salam_finetune import render_output
from tests.webapp.exams.conftest import exam_dataset, question, reply, script
from tests.webapp.train.conftest import approved_queue
from webapp.datasets.services import problems_add
from webapp.exams.models import ExamAnswer
from webapp.exams.selectors import exam_results
from webapp.exams.services import exam_execute, exam_launch
from webapp.gather.models import Attempt
from webapp.runs.models import Run, RunStatus
from webapp.teach.models import Feedback
from webapp.train.models import Checkpoint
from webapp.train.sets import training_set_from_file, training_set_from_queue

pytestmark = pytest.mark.django_db

TEST = {"d0": ("apples", "3"), "r0": ("ropes", "4"), "c0": ("clocks", "6"), "k0": ("coins", "7")}
GUIDELINE = "Count the apples in every box, not only the first."


@pytest.fixture
def trained(db, server, student, annotator, tmp_path):
    """``student`` serves a checkpoint trained on (1) approved SALAM feedback about two past mistakes, one of them on
    a word-for-word copy of exam question d0, the other about ropes; (2) an imported chat file asking exam question c0."""
    past, _ = problems_add(name="past", benchmark="gsm8k", answer_format="number", records=[
        ProblemRecord("copy", question("d0", "apples"), "3", split="train", task="apples"),
        ProblemRecord("rope", question("r9", "ropes"), "9", split="train", task="ropes")])
    gather = Run.objects.create(kind="gather", name="baseline gather", config={}, status="succeeded")
    feedback = []
    for problem in past.problems.order_by("position"):
        mistake = Attempt.objects.create(run=gather, problem=problem, model_name="base", prompt="[]", raw_output=reply(1),
                                         extracted="1", correct=False, scorer="numeric")
        fields = {"reason": "stopped counting early", "guideline": GUIDELINE}
        feedback.append(Feedback.objects.create(attempt=mistake, problem=problem, method="salam", teacher_name="teacher",
                                                raw_output="{}", fields=fields, text=render_output(**fields)))
    queue = approved_queue(feedback, annotator, name="salam approved")
    salam_set = training_set_from_queue(name="assistant data", target="salam_assistant", queue=queue, validation_share=0)
    chat = tmp_path / "chat.jsonl"
    chat.write_text(json.dumps({"messages": [{"role": "user", "content": question("c0", "clocks")},
                                             {"role": "assistant", "content": "6"}]}) + "\n")
    file_set = training_set_from_file(name="imported", path=chat, validation_share=0)
    for training_set in (salam_set, file_set):
        train = Run.objects.create(kind="train", name=f"train on {training_set.name}", status="succeeded",
                                   config={"training_set": training_set.pk, "train": {}})
        Checkpoint.objects.create(run=train, step=10, path="/nowhere", is_final=True, endpoint=student)
    return exam_dataset(TEST)


def examine(researcher, server, student, dataset, **settings) -> tuple[Run, dict[str, ExamAnswer]]:
    script(server, {key: gold for key, (_, gold) in TEST.items()})
    run = exam_launch(user=researcher, data={"student_endpoint_id": student.pk, "dataset_ids": [dataset.pk], **settings})
    exam_execute(run_id=run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED, run.error
    return run, {a.problem.external_id: a for a in ExamAnswer.objects.filter(run=run).select_related("problem")}


def test_exact_copies_are_flagged_and_counted_unless_asked(researcher, server, student, trained):
    run, answers = examine(researcher, server, student, trained, near_duplicates=False)
    assert [(m["kind"], m["score"]) for m in answers["d0"].contamination] == [("exact", 1.0)]
    assert [m["kind"] for m in answers["c0"].contamination] == ["exact"]  # the imported chat's first user message
    assert answers["r0"].contamination == [] and answers["k0"].contamination == []
    assert not any(a.excluded for a in answers.values())
    results = exam_results(run)
    assert (results.table.overall.n, results.contaminated, results.excluded) == (4, 2, 0)


def test_near_duplicates_by_embedding_and_exclusion(researcher, server, student, trained, keyword_embedding):
    run, answers = examine(researcher, server, student, trained, exclude_contaminated=True)
    # The keyword embedder gives the two ropes questions cosine 1: a near duplicate; d0's copy stays "exact" only.
    assert [m["kind"] for m in answers["r0"].contamination] == ["near"] and answers["r0"].contamination[0]["score"] == 1.0
    assert [m["kind"] for m in answers["d0"].contamination] == ["exact"]
    assert {key for key, a in answers.items() if a.excluded} == {"d0", "r0", "c0"}
    results = exam_results(run)
    assert (results.table.overall.n, results.table.overall.correct, results.excluded) == (1, 1, 1 + 2)
    assert run.counts["scored"] == 1 and run.counts["excluded"] == 3
    assert run.events.filter(message__contains="3 contaminated problems are excluded").exists()


def test_the_report_warns_of_contamination(researcher, server, student, trained, annotator_client):
    run, _ = examine(researcher, server, student, trained, near_duplicates=False)
    page = annotator_client.get(reverse("exams:report", args=[run.pk])).content.decode()
    assert "2 problems also appear in the examined checkpoint's training data; they are still counted" in page
    flagged = annotator_client.get(reverse("exams:report", args=[run.pk]), {"verdict": "contaminated"}).context["page"]
    assert sorted(a.problem.external_id for a in flagged.object_list) == ["c0", "d0"]


def test_the_trace_leads_from_the_answer_to_the_review_and_the_mistake(researcher, server, student, trained, annotator,
                                                                     annotator_client):
    _, answers = examine(researcher, server, student, trained, near_duplicates=False)
    page = annotator_client.get(reverse("exams:trace", args=[answers["d0"].pk]))
    html = page.content.decode()
    assert page.status_code == 200
    chain = [
        "The exam answer", "The student's samples", "(model <code>exam-student</code>)",  # answer, samples, endpoint
        "train on assistant data",  # the checkpoint's training run
        "assistant data",  # its training set
        "the same question, word for word (contamination)",  # the example trained on this very question
        f"Approved by {annotator.username}",  # its review
        "SALAM feedback by teacher", GUIDELINE,  # the feedback
        "Mistake</dt><dd><code>1</code> by base",  # the wrong answer it explains
        "[d0] Ann counts the apples in box d0.",  # and its problem
    ]
    at = 0
    for text in chain:  # each found after the one before, down the page
        found = html.find(text, at)
        assert found != -1, f"{text!r} is missing after position {at}"
        at = found + len(text)
    training_run = reverse("runs:detail", args=[Checkpoint.objects.first().run_id])
    assert training_run not in html  # annotators get names, not links to researchers' pages
    annotator_client.force_login(researcher)
    assert training_run in annotator_client.get(reverse("exams:trace", args=[answers["d0"].pk])).content.decode()


def test_the_run_page_of_an_exam_links_to_its_report(researcher_client, researcher, server, student, trained):
    run, _ = examine(researcher, server, student, trained, near_duplicates=False)
    page = researcher_client.get(run.get_absolute_url()).content.decode()
    assert 'id="exam-summary"' in page and reverse("exams:report", args=[run.pk]) in page and "Accuracy <strong>100.0%" in page
