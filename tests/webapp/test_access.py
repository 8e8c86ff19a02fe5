"""Every URL pattern, requested by each role and anonymously, answers as the role rules say."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from webapp.datasets.models import Dataset, DatasetImport, Problem
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.models import Attempt
from webapp.runs.models import Run
from webapp.teach.models import Feedback, PromptTemplate

LOGIN = "login"  # a redirect to the sign-in page
ROLES = ("anonymous", "annotator", "researcher", "admin")
PAGE_RESEARCHERS = {"anonymous": LOGIN, "annotator": 403, "researcher": 200, "admin": 200}
PAGE_EVERYONE = {"anonymous": LOGIN, "annotator": 200, "researcher": 200, "admin": 200}
API_RESEARCHERS = {"anonymous": 401, "annotator": 403, "researcher": 200, "admin": 200}
API_EVERYONE = {"anonymous": 401, "annotator": 200, "researcher": 200, "admin": 200}
POST_ONLY = {"anonymous": LOGIN, "annotator": 405, "researcher": 405, "admin": 405}
API_POST_ONLY = {"anonymous": 401, "annotator": 403, "researcher": 405, "admin": 405}
POST_ONLY_RESEARCHERS = {"anonymous": LOGIN, "annotator": 403, "researcher": 405, "admin": 405}

# What a GET of each named route must answer, per role. A new route without an entry fails
# test_every_route_has_an_expectation, so nobody adds a page without deciding who may see it.
EXPECTED = {
    "home": PAGE_EVERYONE,
    "health": {role: 200 for role in ROLES},
    "accounts:login": {"anonymous": 200, "annotator": 302, "researcher": 302, "admin": 302},
    "accounts:logout": POST_ONLY,
    "accounts:profile": PAGE_EVERYONE,
    "accounts:token-rotate": POST_ONLY,
    "accounts:token-revoke": POST_ONLY,
    "datasets:list": PAGE_RESEARCHERS,
    "datasets:detail": PAGE_RESEARCHERS,
    "datasets:problem": PAGE_RESEARCHERS,
    "datasets:import": PAGE_RESEARCHERS,
    "datasets:import-detail": PAGE_RESEARCHERS,
    "endpoints:list": PAGE_RESEARCHERS,
    "endpoints:new": PAGE_RESEARCHERS,
    "endpoints:detail": PAGE_RESEARCHERS,
    "endpoints:edit": PAGE_RESEARCHERS,
    "endpoints:test": POST_ONLY_RESEARCHERS,
    "runs:list": PAGE_RESEARCHERS,
    "runs:detail": PAGE_RESEARCHERS,
    "runs:cancel": POST_ONLY_RESEARCHERS,
    "runs:resume": POST_ONLY_RESEARCHERS,
    "gather:new": PAGE_RESEARCHERS,
    "gather:attempts": PAGE_RESEARCHERS,
    "gather:attempt": PAGE_RESEARCHERS,
    "gather:import-seed": PAGE_RESEARCHERS,
    "gather:export": {"anonymous": LOGIN, "annotator": 403, "researcher": 400, "admin": 400},  # no format given
    "run-list": API_RESEARCHERS,
    "run-detail": API_RESEARCHERS,
    "run-cancel": API_POST_ONLY,
    "run-resume": API_POST_ONLY,
    "gather-run-list": API_POST_ONLY,
    "gather-run-import-file": API_POST_ONLY,
    "attempt-list": API_RESEARCHERS,
    "attempt-detail": API_RESEARCHERS,
    "teach:new": PAGE_RESEARCHERS,
    "teach:import": PAGE_RESEARCHERS,
    "teach:feedback-list": PAGE_RESEARCHERS,
    "teach:feedback": PAGE_RESEARCHERS,
    "teach:templates": PAGE_RESEARCHERS,
    "teach:template-edit": PAGE_RESEARCHERS,
    "teach-run-list": API_POST_ONLY,
    "teach-run-estimate": API_POST_ONLY,
    "teach-run-import-file": API_POST_ONLY,
    "feedback-list": API_RESEARCHERS,
    "feedback-detail": API_RESEARCHERS,
    "prompt-template-list": API_RESEARCHERS,
    "prompt-template-detail": API_RESEARCHERS,
    "api-root": API_RESEARCHERS,
    "endpoint-list": API_RESEARCHERS,
    "endpoint-detail": API_RESEARCHERS,
    "endpoint-test": API_POST_ONLY,
    "dataset-list": API_RESEARCHERS,
    "dataset-detail": API_RESEARCHERS,
    "problem-list": API_RESEARCHERS,
    "problem-detail": API_RESEARCHERS,
    "import-list": API_RESEARCHERS,
    "import-detail": API_RESEARCHERS,
    "api-schema": API_RESEARCHERS,
    "api-docs": PAGE_RESEARCHERS,
    # Review: the queue in `objects` has all three roles as annotators; its review belongs to the annotator.
    "review:queues": PAGE_EVERYONE,
    "review:queue": PAGE_RESEARCHERS,
    "review:work": PAGE_EVERYONE,
    "review:item": {"anonymous": LOGIN, "annotator": 200, "researcher": 404, "admin": 404},  # only one's own
    "review:diff": POST_ONLY,
    "review:bulk": POST_ONLY_RESEARCHERS,
    "review:export": {"anonymous": LOGIN, "annotator": 403, "researcher": 400, "admin": 400},  # no format given
    "review-queue-list": API_RESEARCHERS,
    "review-queue-detail": API_RESEARCHERS,
    "review-queue-bulk": API_POST_ONLY,
    "review-queue-export": {"anonymous": 401, "annotator": 403, "researcher": 400, "admin": 400},  # no format given
    "review-list": {"anonymous": 401, "annotator": 200, "researcher": 200, "admin": 200},
    "review-detail": {"anonymous": 401, "annotator": 200, "researcher": 200, "admin": 200},
    "review-next": {"anonymous": 401, "annotator": 400, "researcher": 400, "admin": 400},  # no ?queue= given
    "review-decide": {"anonymous": 401, "annotator": 405, "researcher": 405, "admin": 405},
    "train:index": PAGE_RESEARCHERS,
    "train:set_new": PAGE_RESEARCHERS,
    "train:set": PAGE_RESEARCHERS,
    "train:new": PAGE_RESEARCHERS,
    "train:serve": POST_ONLY_RESEARCHERS,
    "training-set-list": API_RESEARCHERS,
    "training-set-detail": API_RESEARCHERS,
    "training-set-examples": API_RESEARCHERS,
    "train-run-list": API_POST_ONLY,
    "train-run-metrics": API_RESEARCHERS,
    "checkpoint-list": API_RESEARCHERS,
    "checkpoint-detail": API_RESEARCHERS,
    "checkpoint-serve": API_POST_ONLY,
    # Exams: reports, comparisons and traces are shareable with anyone signed in; launching is for researchers.
    "exams:list": PAGE_EVERYONE,
    "exams:new": PAGE_RESEARCHERS,
    "exams:compare": PAGE_EVERYONE,  # no exams chosen: the form
    "exams:report": PAGE_EVERYONE,
    "exams:export": PAGE_EVERYONE,  # CSV unless told otherwise
    "exams:trace": PAGE_EVERYONE,
    "exam-list": API_EVERYONE,
    "exam-detail": API_EVERYONE,
    "exam-estimate": API_POST_ONLY,
    "exam-answers": API_EVERYONE,
    "exam-export": API_EVERYONE,
    "exam-compare": {"anonymous": 401, "annotator": 400, "researcher": 400, "admin": 400},  # no ?before=&after= given
    # Chat: everyone signed in, each on their own conversations (the one in `objects` is the annotator's).
    "chat:list": PAGE_EVERYONE,
    "chat:new": POST_ONLY,
    "chat:explain": PAGE_EVERYONE,
    "chat:session": {"anonymous": LOGIN, "annotator": 200, "researcher": 404, "admin": 404},
    "chat-session-list": API_EVERYONE,
    "chat-session-detail": {"anonymous": 401, "annotator": 200, "researcher": 404, "admin": 404},
    "chat-session-messages": {"anonymous": 401, "annotator": 200, "researcher": 404, "admin": 404},
    "chat-session-regenerate": {"anonymous": 401, "annotator": 405, "researcher": 405, "admin": 405},
    "chat-session-assistants": API_EVERYONE,
    "chat-session-explain": {"anonymous": 401, "annotator": 405, "researcher": 405, "admin": 405},
}


def named_routes(resolver: URLResolver | None = None, namespace: str = ""):
    """(full name, pattern) for every named route, the admin's left out (checked separately)."""
    for entry in (resolver or get_resolver()).url_patterns:
        if isinstance(entry, URLResolver):
            if entry.namespace == "admin":
                continue
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from named_routes(entry, inner)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", entry


def test_every_route_has_an_expectation():
    names = {name for name, _ in named_routes()}
    assert names - set(EXPECTED) == set(), "add the new routes to EXPECTED"
    assert set(EXPECTED) - names == set(), "EXPECTED names routes that no longer exist"


@pytest.fixture
def objects(researcher, annotator, admin_user):
    dataset = Dataset.objects.create(name="d", benchmark="gsm8k", answer_format="number", scorer="numeric")
    problem = Problem.objects.create(dataset=dataset, external_id="1", position=1, split="test", question="q",
                                     gold_answer="1", question_hash="x")
    job = DatasetImport.objects.create(upload_dir="", content_sha256="0" * 64, created_by=researcher)
    endpoint = ModelEndpoint.objects.create(name="m", base_url="http://127.0.0.1:9/v1", model_name="m")
    run = Run.objects.create(kind="gather", name="r", config={})
    attempt = Attempt.objects.create(run=run, problem=problem, model_name="m", prompt="[]", raw_output="x", correct=False,
                                     scorer="numeric")
    ids = {"runs:detail": run.pk, "runs:cancel": run.pk, "runs:resume": run.pk, "run-detail": run.pk,
           "run-cancel": run.pk, "run-resume": run.pk, "gather:attempt": attempt.pk, "attempt-detail": attempt.pk, "gather:export": run.pk}
    feedback = Feedback.objects.create(attempt=attempt, problem=problem, method="salam", teacher_name="t", raw_output="r", text="t")
    from webapp.teach.templates_store import template_ensure_defaults

    template_ensure_defaults()
    from webapp.review.services import queue_create

    queue = queue_create(name="q", feedback=[feedback], annotators=[annotator, researcher, admin_user], per_item=3)
    review = queue.reviews.get(annotator=annotator)
    ids |= {name: queue.pk for name in ("review:queue", "review:work", "review:bulk", "review:export",
                                        "review-queue-detail", "review-queue-bulk", "review-queue-export")}
    ids |= {"review:item": review.pk, "review:diff": review.pk, "review-detail": review.pk, "review-decide": review.pk}
    ids |= {"teach:feedback": feedback.pk, "feedback-detail": feedback.pk, "teach:template-edit": "salam_feedback",
            "prompt-template-detail": PromptTemplate.objects.first().pk}
    ids |= _train_objects(run)
    ids |= _exam_objects(problem, endpoint)
    ids |= _chat_objects(annotator, endpoint)
    return ids | {"endpoints:detail": endpoint.pk, "endpoints:edit": endpoint.pk, "endpoints:test": endpoint.pk,
            "endpoint-detail": endpoint.pk, "endpoint-test": endpoint.pk,"dataset-detail": dataset.pk, "datasets:detail": dataset.pk, "problem-detail": problem.pk,
            "datasets:problem": problem.pk, "import-detail": job.pk, "datasets:import-detail": job.pk}


def _train_objects(gather_run) -> dict:
    import tempfile
    from pathlib import Path

    from webapp.train.models import Checkpoint
    from webapp.train.sets import training_set_from_file

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "pairs.jsonl"
        path.write_text('{"prompt": "2+2?", "completion": "4"}\n')
        training_set = training_set_from_file(name="s", path=path, validation_share=0)
    train = Run.objects.create(kind="train", name="t", config={"training_set": training_set.pk, "train": {}})
    checkpoint = Checkpoint.objects.create(run=train, step=1, path="/nowhere", is_final=True)
    return {"train:set": training_set.pk, "training-set-detail": training_set.pk, "training-set-examples": training_set.pk,
            "train-run-metrics": train.pk, "train:serve": checkpoint.pk, "checkpoint-detail": checkpoint.pk,
            "checkpoint-serve": checkpoint.pk}


def _exam_objects(problem, endpoint) -> dict:
    from webapp.exams.models import ExamAnswer

    exam = Run.objects.create(kind="exam", name="e", config={"mode": "plain", "student_endpoint_id": endpoint.pk})
    answer = ExamAnswer.objects.create(run=exam, problem=problem, answer="1", correct=True)
    return {"exams:report": exam.pk, "exams:export": exam.pk, "exams:trace": answer.pk, "exam-detail": exam.pk,
            "exam-answers": exam.pk, "exam-export": exam.pk}


def _chat_objects(owner, endpoint) -> dict:
    from webapp.chat.models import ChatSession

    chat = ChatSession.objects.create(owner=owner, endpoint=endpoint, endpoint_name=endpoint.name)
    return {name: chat.pk for name in ("chat:session", "chat-session-detail", "chat-session-messages",
                                       "chat-session-regenerate")}


def _url(name: str, pattern: URLPattern, objects: dict) -> str:
    kwargs = {key: objects[name] for key in pattern.pattern.regex.groupindex}
    return reverse(name, kwargs=kwargs)


@pytest.mark.parametrize("role", ROLES)
def test_each_route_answers_each_role_as_expected(client, role, objects, annotator, researcher, admin_user):
    users = {"annotator": annotator, "researcher": researcher, "admin": admin_user}
    if role != "anonymous":
        client.force_login(users[role])
    wrong = []
    for name, pattern in named_routes():
        if "format" in pattern.pattern.regex.groupindex:
            continue  # DRF's ".json" twins of the same views
        url = _url(name, pattern, objects)
        response = client.get(url)
        expected = EXPECTED[name][role]
        if expected == LOGIN:
            ok = response.status_code == 302 and response["Location"].startswith(reverse("accounts:login"))
        else:
            ok = response.status_code == expected
        if not ok:
            wrong.append(f"{name} {url}: got {response.status_code}, expected {expected}")
    assert wrong == []


@pytest.mark.parametrize("role,status", [("anonymous", 302), ("annotator", 302), ("researcher", 302), ("admin", 200)])
def test_only_admins_reach_the_django_admin(client, role, status, annotator, researcher, admin_user):
    users = {"annotator": annotator, "researcher": researcher, "admin": admin_user}
    if role != "anonymous":
        client.force_login(users[role])
    response = client.get(reverse("admin:index"))
    assert response.status_code == status
    if status == 302:
        assert reverse("admin:login") in response["Location"]


def test_api_accepts_a_token_instead_of_a_session(client, researcher):
    from webapp.accounts.services import user_token_rotate

    key = user_token_rotate(user=researcher)
    assert client.get("/api/datasets/", HTTP_AUTHORIZATION=f"Token {key}").status_code == 200
    assert client.get("/api/datasets/", HTTP_AUTHORIZATION="Token not-a-real-key").status_code == 401


def test_annotator_cannot_write_through_the_api(annotator_client):
    response = annotator_client.post("/api/imports/", {})
    assert response.status_code == 403


def test_sign_in_page_signs_in_and_sign_out_signs_out(client, researcher):
    from tests.conftest import PASSWORD

    response = client.post(reverse("accounts:login"), {"username": researcher.username, "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("datasets:list")).status_code == 200
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("datasets:list")).status_code == 302


def test_wrong_password_is_refused_with_a_message(client, researcher):
    response = client.post(reverse("accounts:login"), {"username": researcher.username, "password": "nope"})
    assert response.status_code == 200
    assert b"Wrong username or password" in response.content


def test_home_page_links_annotators_only_to_pages_they_may_open(annotator_client):
    html = annotator_client.get(reverse("home")).content.decode()
    assert reverse("datasets:list") not in html
