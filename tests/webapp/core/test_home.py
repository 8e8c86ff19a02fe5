"""The home page: where the user is in the loop, each step's counts, and the next step, for each role."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from pipeline.benchmarks.records import ProblemRecord
from tests.webapp.review.conftest import make_feedback
from webapp.chat.models import ChatSession
from webapp.core.selectors import Link, loop_steps
from webapp.datasets.services import problems_add
from webapp.endpoints.models import ModelEndpoint
from webapp.exams.models import ExamAnswer
from webapp.gather.models import Attempt
from webapp.review.models import Decision, Review
from webapp.review.services import queue_create
from webapp.runs.models import Run
from webapp.train.models import Checkpoint, TrainingSet

STEPS = ["dataset", "gather", "teach", "review", "train", "exam", "chat"]


def states(steps) -> dict[str, str]:
    return {step.key: step.state for step in steps}


def tallies(steps, key: str) -> dict[str, int]:
    """One step's counts by their singular noun."""
    step = next(step for step in steps if step.key == key)
    return {tally.one: tally.number for tally in step.tallies}


def links(response) -> set[str]:
    """Every page the response links to, without fragments; the stylesheet and scripts left out."""
    hrefs = (html.unescape(href) for href in re.findall(r'href="([^"]+)"', response.content.decode()))
    return {href.split("#")[0] for href in hrefs if not href.startswith("/static/")}


def sums_dataset(count: int):
    records = [ProblemRecord(external_id=f"s{i}", question=f"What is {i} + 1?", gold_answer=str(i + 1), split="train")
               for i in range(count)]
    return problems_add(name="sums", benchmark="gsm8k", answer_format="number", records=records)[0]


def answer(run: Run, problem, *, correct: bool) -> Attempt:
    return Attempt.objects.create(run=run, problem=problem, model_name="student", prompt="[]", raw_output="x",
                                  correct=correct, scorer="numeric")


def exam(problems, right: int) -> Run:
    """A finished exam that got the first ``right`` of ``problems`` right."""
    run = Run.objects.create(kind="exam", name="exam", status="succeeded", config={"mode": "plain"})
    ExamAnswer.objects.bulk_create(ExamAnswer(run=run, problem=problem, answer="1", correct=index < right)
                                   for index, problem in enumerate(problems))
    return run


@pytest.fixture
def whole_loop(researcher, annotator):
    """Something in every step: mistakes with feedback, a queue with one item approved, a served model, two exams."""
    trained = ModelEndpoint.objects.create(name="trained", base_url="http://127.0.0.1:9/v1", model_name="t")
    feedback = make_feedback(3)
    queue = queue_create(name="first", feedback=feedback, annotators=[annotator, researcher], per_item=1)
    Review.objects.filter(pk=queue.reviews.first().pk).update(decision=Decision.APPROVE)
    TrainingSet.objects.create(name="approved", target="lema_student", train_file="/nowhere.jsonl")
    train = Run.objects.create(kind="train", name="train", status="succeeded", config={})
    Checkpoint.objects.create(run=train, step=10, path="/nowhere", is_final=True, endpoint=trained)
    problems = [item.problem for item in feedback]
    before, after = exam(problems, right=1), exam(problems, right=2)
    ChatSession.objects.create(owner=researcher, endpoint_name="assistant")
    return {"before": before, "after": after}


def test_an_empty_database_makes_the_dataset_step_current_with_the_import_button(researcher_client):
    response = researcher_client.get(reverse("home"))

    steps = response.context["steps"]
    assert [step.key for step in steps] == STEPS
    assert states(steps) == {"dataset": "current"} | {key: "later" for key in STEPS[1:]}
    assert tallies(steps, "dataset") == {"dataset imported": 0, "problem": 0}
    assert response.context["next_step"].action == Link("Import a dataset", reverse("datasets:import"))
    html = response.content.decode()
    assert f'<a class="button primary" href="{reverse("datasets:import")}">Import a dataset</a>' in html
    assert 'id="step-dataset" aria-current="step"' in html


def test_a_dataset_and_a_gathered_mistake_move_the_current_step_to_teach(researcher_client):
    problems = list(sums_dataset(3).problems.all())
    gather = Run.objects.create(kind="gather", name="first pass", status="succeeded", config={})
    answer(gather, problems[0], correct=False)
    answer(gather, problems[1], correct=True)
    examined = Run.objects.create(kind="exam", name="an exam", config={})
    answer(examined, problems[2], correct=False)  # an exam's wrong answer is not a mistake to teach from

    steps = researcher_client.get(reverse("home")).context["steps"]

    assert states(steps) == {"dataset": "done", "gather": "done", "teach": "current", "review": "later",
                             "train": "later", "exam": "later", "chat": "later"}
    assert tallies(steps, "dataset") == {"dataset imported": 1, "problem": 3}
    assert tallies(steps, "gather") == {"gather run": 1, "mistake collected": 1}
    assert tallies(steps, "exam") == {"exam": 1}


def test_a_step_whose_model_is_missing_asks_to_register_one_first(researcher_client):
    problems = list(sums_dataset(1).problems.all())
    answer(Run.objects.create(kind="gather", name="g", config={}), problems[0], correct=False)

    before = researcher_client.get(reverse("home")).context["next_step"]
    ModelEndpoint.objects.create(name="teacher", base_url="http://127.0.0.1:9/v1", model_name="t", as_teacher=True)
    after = researcher_client.get(reverse("home")).context["next_step"]

    assert (before.key, before.action) == ("teach", Link("Register a teacher model first", reverse("endpoints:new")))
    assert (after.key, after.action) == ("teach", Link("Start a teacher run", reverse("teach:new")))


def test_the_train_step_leads_from_building_a_set_to_training_to_serving(researcher):
    def action() -> Link:
        return next(step for step in loop_steps(researcher) if step.key == "train").action

    assert action() == Link("Build a training set", reverse("train:set_new"))
    TrainingSet.objects.create(name="approved", target="lema_student", train_file="/nowhere.jsonl")
    assert action() == Link("Launch a training run", reverse("train:new"))
    Run.objects.create(kind="train", name="crashed", status="failed", config={})
    assert action() == Link("Launch a training run", reverse("train:new"))  # nothing finished to serve
    Run.objects.create(kind="train", name="finished", status="succeeded", config={})
    assert action() == Link("Serve a finished model", f"{reverse('runs:list')}?kind=train")


def test_a_run_in_progress_is_shown_with_a_link_to_watch_it(researcher_client):
    sums_dataset(1)
    Run.objects.create(kind="gather", name="g", status="running", config={})

    response = researcher_client.get(reverse("home"))

    gather = next(step for step in response.context["steps"] if step.key == "gather")
    assert gather.state == "current"
    assert [note.text for note in gather.notes] == ["1 run in progress."]
    assert f'href="{reverse("runs:list")}?kind=gather">Watch</a>' in response.content.decode()


def test_an_annotator_sees_their_pending_items_and_a_link_into_their_queue(annotator_client, annotator, researcher):
    queue = queue_create(name="mine", feedback=make_feedback(2), annotators=[annotator], per_item=1)
    queue_create(name="not mine", feedback=make_feedback(5), annotators=[researcher], per_item=1)

    response = annotator_client.get(reverse("home"))

    steps = response.context["steps"]
    assert states(steps)["review"] == "current"
    assert tallies(steps, "review") == {"queue you review": 1, "item you approved": 0, "item waiting for you": 2}
    work = reverse("review:work", args=[queue.pk])
    assert response.context["next_step"].action == Link("Review 2 items", work)
    assert f'<a class="button primary" href="{work}">Review 2 items</a>' in response.content.decode()


def test_an_annotator_is_never_shown_a_link_to_a_page_they_would_be_refused(annotator_client, annotator, whole_loop):
    Run.objects.create(kind="exam", name="running", status="running", config={})
    response = annotator_client.get(reverse("home"))

    html = response.content.decode()
    assert "A researcher does this step." in html
    for forbidden in ("datasets:import", "gather:new", "teach:new", "train:set_new", "exams:new", "runs:list"):
        assert reverse(forbidden) not in html
    refused = [url for url in links(response) if annotator_client.get(url).status_code in (403, 404)]
    assert refused == []


def test_an_annotator_with_nothing_to_review_is_sent_to_chat(annotator_client):
    response = annotator_client.get(reverse("home"))

    assert states(response.context["steps"])["chat"] == "current"
    assert response.context["next_step"].action == Link("Start a chat", reverse("chat:list") + "#new-chat")


def test_the_latest_two_exams_are_summed_up_with_a_link_to_their_comparison(researcher_client, whole_loop):
    steps = researcher_client.get(reverse("home")).context["steps"]

    [comparison] = next(step for step in steps if step.key == "exam").notes
    before, after = whole_loop["before"].pk, whole_loop["after"].pk
    assert comparison.text == f"Latest two exams: #{before} 33.3% right, then #{after} 66.7% right."
    assert comparison.link == Link("Compare them", f"{reverse('exams:compare')}?before={before}&after={after}")


def test_a_researcher_round_the_whole_loop_is_asked_to_go_round_again(researcher_client, researcher, whole_loop):
    response = researcher_client.get(reverse("home"))

    assert set(states(response.context["steps"]).values()) == {"done"}
    assert response.context["next_step"] is None
    assert "Go round again" in response.content.decode()
    mine = researcher.reviews.filter(decision=Decision.PENDING).count()
    assert tallies(response.context["steps"], "review") == {
        "review queue": 1, "item approved": 1, "item waiting for a decision": 2, "item waiting for you": mine}


def test_the_number_of_queries_does_not_grow_with_the_data(researcher, annotator, whole_loop,
                                                           django_assert_max_num_queries):
    for user in (researcher, annotator):
        with django_assert_max_num_queries(13):
            loop_steps(user)
    make_feedback(30)
    queue_create(name="more", feedback=make_feedback(20), annotators=[annotator, researcher], per_item=2)
    exam([item.problem for item in make_feedback(10)], right=5)
    for user in (researcher, annotator):
        with django_assert_max_num_queries(13):
            loop_steps(user)


def test_the_page_takes_a_bounded_number_of_queries(researcher_client, whole_loop, django_assert_max_num_queries):
    with django_assert_max_num_queries(15):  # the session and the user, then the loop
        assert researcher_client.get(reverse("home")).status_code == 200
