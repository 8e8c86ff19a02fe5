"""A model server's announcements become endpoints: read strictly, one endpoint per served model, never a duplicate,
never a person's name or roles overwritten; the pages and the API say who announced it and when it was last seen."""

from __future__ import annotations

import copy
import logging
from datetime import datetime, timedelta, timezone

import pytest
from django.urls import reverse
from django.utils import timezone as django_timezone

from gpu_worker.announce import ANNOUNCE_TASK, build_announcement
from webapp.endpoints import services
from webapp.endpoints.announcements import AnnouncementError, parse_announcement
from webapp.endpoints.models import EndpointKind, ModelEndpoint
from webapp.endpoints.tasks import endpoint_announced

BASE_URL = "http://gpu-1:8001/v1"
H100 = {"index": 0, "name": "NVIDIA H100 80GB HBM3", "memory_mib": 81559}


def announcement(*, sent_at: datetime | None = None, models: list[dict] | None = None, **changes) -> dict:
    """What gpu_worker/announce.py sends for a server with a base model and one adapter on it."""
    payload = build_announcement(
        base_url=BASE_URL, host="gpu-1", gpus=[H100, {**H100, "index": 1}], backend="vllm", api_key_env="",
        interval_s=60.0, now=sent_at or django_timezone.now(),
        models=models or [{"name": "student", "parent": None, "root": "/models/student"},
                          {"name": "tutor", "parent": "student", "root": "/adapters/tutor"}])
    return {**payload, **changes}


# --- Reading (pure) -----------------------------------------------------------------------------


def test_what_the_model_server_sends_is_what_the_web_side_reads():
    read = parse_announcement(announcement(base_url=BASE_URL + "/"))
    assert read.base_url == BASE_URL and read.host == "gpu-1" and read.backend == "vllm" and len(read.gpus) == 2
    assert [(m.name, m.parent, read.weights_of(m)) for m in read.models] == [
        ("student", None, "/models/student"), ("tutor", "student", "/models/student")]  # an adapter runs on its base


def broken(change) -> dict:
    payload = copy.deepcopy(announcement())
    change(payload)
    return payload


@pytest.mark.parametrize("payload,message", [
    ("not an object", "expected a JSON object, got str"),
    (broken(lambda p: p.update(version=2)), "version: expected 1, got 2"),
    (broken(lambda p: p.update(extra=1)), "unknown field 'extra'"),
    (broken(lambda p: p.pop("host")), "missing field 'host'"),
    (broken(lambda p: p.update(base_url="gpu-1:8001/v1")), "base_url: expected http(s)://HOST:PORT/v1"),
    (broken(lambda p: p.update(base_url="javascript:alert(1)")), "base_url"),
    (broken(lambda p: p.update(host="")), "host: expected non-empty text"),
    (broken(lambda p: p.update(backend="tgi")), "backend: expected one of"),
    (broken(lambda p: p.update(api_key_env="sk-123")), "api_key_env: expected the name of an environment variable"),
    (broken(lambda p: p.update(interval_s=True)), "interval_s"),  # a bool is not a number of seconds
    (broken(lambda p: p.update(sent_at="2026-01-02T03:04:05")), "sent_at: expected an ISO 8601 time with its time zone"),
    (broken(lambda p: p.update(sent_at="yesterday")), "sent_at"),
    (broken(lambda p: p.update(models=[])), "models: expected a non-empty list"),
    (broken(lambda p: p["models"].append(p["models"][0])), "the name 'student' is given twice"),
    (broken(lambda p: p["models"][0].update(name="has space")), "models[0].name: 'has space' is not a served model name"),
    (broken(lambda p: p["models"][0].update(size=1)), "models[0]: unknown field 'size'"),
    (broken(lambda p: p["models"][1].update(parent="nobody")), "names a parent 'nobody' that is not a base model"),
    (broken(lambda p: p["models"][0].update(root="")), "models[0].root: expected non-empty text"),
    (broken(lambda p: p["gpus"][0].update(memory_mib=-1)), "gpus[0]: index and memory_mib are whole numbers"),
    (broken(lambda p: p.update(gpus="H100")), "gpus: expected a list"),
])
def test_a_bad_announcement_is_refused_naming_the_field(payload, message):
    with pytest.raises(AnnouncementError) as refused:
        parse_announcement(payload)
    assert message in str(refused.value)


# --- Recording ----------------------------------------------------------------------------------


def test_the_task_is_the_one_the_model_server_sends_to():
    assert endpoint_announced.name == ANNOUNCE_TASK


@pytest.mark.django_db
def test_an_announcement_registers_one_local_endpoint_per_served_model():
    sent_at = django_timezone.now() - timedelta(seconds=3)
    endpoint_announced(announcement(sent_at=sent_at))
    student, tutor = ModelEndpoint.objects.order_by("pk")
    assert (student.name, student.kind, student.base_url, student.model_name) == (
        "student on gpu-1:8001", EndpointKind.LOCAL, BASE_URL, "student")
    assert student.base_weights == "/models/student" and student.adapters == {}
    assert tutor.base_weights == "/models/student" and tutor.adapters == {"tutor": "/adapters/tutor"}
    for endpoint in (student, tutor):
        assert endpoint.roles == ["student"]  # a person chooses teacher or assistant
        assert endpoint.announced_by == "gpu-1" and endpoint.last_seen_at == sent_at
        assert endpoint.gpu_summary == "2 × NVIDIA H100 80GB HBM3"


@pytest.mark.django_db
def test_heartbeats_refresh_last_seen_without_duplicating_or_undoing_a_persons_edits():
    start = django_timezone.now() - timedelta(minutes=5)
    endpoint_announced(announcement(sent_at=start))
    ModelEndpoint.objects.filter(model_name="student").update(name="Our student", as_teacher=True, as_assistant=True,
                                                              is_active=False, base_weights="/mnt/elsewhere")
    endpoint_announced(announcement(sent_at=start + timedelta(minutes=2)))
    endpoint_announced(announcement(sent_at=start + timedelta(minutes=1)))  # late: must not move the time back
    assert ModelEndpoint.objects.count() == 2
    student = ModelEndpoint.objects.get(model_name="student")
    assert (student.name, student.roles, student.is_active, student.base_weights) == (
        "Our student", ["student", "teacher", "assistant"], False, "/mnt/elsewhere")
    assert student.last_seen_at == start + timedelta(minutes=2)


@pytest.mark.django_db
def test_an_endpoint_registered_by_hand_is_reused_not_duplicated():
    mine = ModelEndpoint.objects.create(name="by hand", base_url=BASE_URL + "/", model_name="student", as_teacher=True)
    endpoint_announced(announcement())
    mine.refresh_from_db()
    assert ModelEndpoint.objects.filter(model_name="student").get() == mine
    assert mine.name == "by hand" and mine.kind == EndpointKind.OPENAI and mine.last_seen_at is not None


@pytest.mark.django_db
def test_a_clock_ahead_of_ours_does_not_put_last_seen_in_the_future():
    endpoint_announced(announcement(sent_at=django_timezone.now() + timedelta(hours=3)))
    assert all(e.last_seen_at <= django_timezone.now() for e in ModelEndpoint.objects.all())


@pytest.mark.django_db
def test_a_taken_name_gets_a_number():
    ModelEndpoint.objects.create(name="student on gpu-1:8001", base_url="http://other:1/v1", model_name="x")
    endpoint_announced(announcement())
    assert ModelEndpoint.objects.get(base_url=BASE_URL, model_name="student").name == "student on gpu-1:8001 (2)"


@pytest.mark.django_db
def test_a_server_with_a_key_is_registered_with_the_variable_that_holds_it():
    endpoint_announced(announcement(api_key_env="ERRATA_MODEL_SERVER_KEY"))
    assert set(ModelEndpoint.objects.values_list("api_key_env", flat=True)) == {"ERRATA_MODEL_SERVER_KEY"}


@pytest.mark.django_db
def test_a_bad_announcement_is_logged_and_dropped(caplog):
    with caplog.at_level(logging.WARNING, logger="webapp.endpoints.tasks"):
        endpoint_announced(broken(lambda p: p["models"][1].update(parent="nobody")))
    assert ModelEndpoint.objects.count() == 0  # the good first model is not written either
    assert "dropped a model server announcement: models: adapter 'tutor'" in caplog.text


@pytest.mark.django_db
def test_a_failure_half_way_leaves_nothing_written(monkeypatch):
    real = services._announced_fields

    def fail_on_the_adapter(announced, model):
        if model.parent is not None:
            raise RuntimeError("database went away")
        return real(announced, model)

    monkeypatch.setattr(services, "_announced_fields", fail_on_the_adapter)
    with pytest.raises(RuntimeError):
        endpoint_announced(announcement())
    assert ModelEndpoint.objects.count() == 0


# --- Pages and API ------------------------------------------------------------------------------


def test_the_pages_and_the_api_say_who_announced_a_model_and_when(researcher_client):
    endpoint_announced(announcement(sent_at=django_timezone.now() - timedelta(minutes=2)))
    student = ModelEndpoint.objects.get(model_name="student")
    listing = researcher_client.get(reverse("endpoints:list")).content.decode()
    assert "announced by gpu-1, last seen 2\xa0minutes ago" in listing
    detail = researcher_client.get(student.get_absolute_url()).content.decode()
    assert 'id="announced"' in detail and "2 × NVIDIA H100 80GB HBM3" in detail and "2\xa0minutes ago" in detail
    api = researcher_client.get(f"/api/endpoints/{student.pk}/").json()
    assert api["announced_by"] == "gpu-1" and api["last_seen_at"] and api["announced_gpus"][0]["name"] == H100["name"]
    unannounced = ModelEndpoint.objects.create(name="plain", base_url="http://x:1/v1", model_name="m")
    assert 'id="announced"' not in researcher_client.get(unannounced.get_absolute_url()).content.decode()


def test_sent_at_is_read_with_its_time_zone():
    read = parse_announcement(announcement(sent_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2)))))
    assert read.sent_at == datetime(2026, 1, 2, 1, 4, 5, tzinfo=timezone.utc)
