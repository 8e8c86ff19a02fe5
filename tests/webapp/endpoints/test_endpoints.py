"""Model endpoints: registered by researchers in the page and the API; keys stay in the environment; the connection check."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.fakeopenai import FakeOpenAI
from webapp.endpoints.models import ModelEndpoint

SECRET = "sk-test-0123456789abcdefSECRET"

FORM = {
    "name": "fake", "kind": "openai", "model_name": "fake-model", "api_key_env": "ERRATA_TEST_KEY",
    "base_weights": "", "gguf_file": "", "adapters": "{}", "as_teacher": "on", "default_params": '{"temperature": 0.5}',
    "max_concurrency": 4, "price_in_per_1k": "0.5", "price_out_per_1k": "1.5", "is_active": "on",
}


@pytest.fixture
def fake_server():
    with FakeOpenAI() as server:
        yield server


def register(client, **changes):
    return client.post(reverse("endpoints:new"), {**FORM, **changes})


def test_a_researcher_registers_an_endpoint_and_the_key_stays_in_the_environment(researcher_client, monkeypatch, fake_server):
    monkeypatch.setenv("ERRATA_TEST_KEY", SECRET)
    response = register(researcher_client, base_url=fake_server.base_url)
    endpoint = ModelEndpoint.objects.get()
    assert response.status_code == 302 and response["Location"] == endpoint.get_absolute_url()
    assert endpoint.roles == ["teacher"] and endpoint.default_params == {"temperature": 0.5}
    # The key is read at call time: it is in no column and on no page.
    assert SECRET not in str(ModelEndpoint.objects.values().get())
    page = researcher_client.get(endpoint.get_absolute_url()).content.decode()
    assert "ERRATA_TEST_KEY" in page and SECRET not in page


@pytest.mark.parametrize("changes,message", [
    ({"as_teacher": ""}, "Choose at least one role"),
    ({"default_params": '{"temperature": 9}'}, "temperature must be in [0.0, 2.0]"),
    ({"default_params": "{not json"}, "not valid JSON"),
    ({"api_key_env": "sk-abc123"}, "Give the NAME of an environment variable"),
    ({"kind": "local"}, "A local model needs its base weights"),
    ({"adapters": '{"a": "/x"}'}, "Adapters are for local models"),
])
def test_the_form_refuses_bad_settings_with_a_message(researcher_client, changes, message):
    response = register(researcher_client, base_url="http://127.0.0.1:9/v1", **changes)
    assert response.status_code == 400
    assert message in response.content.decode().replace("&#x27;", "'")
    assert ModelEndpoint.objects.count() == 0


def test_test_connection_shows_the_answer_and_latency(researcher_client, fake_server):
    endpoint = ModelEndpoint.objects.create(name="fake", base_url=fake_server.base_url, model_name="fake-model")
    response = researcher_client.post(reverse("endpoints:test", args=[endpoint.pk]), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and 'id="check-answer"' in html and "Answered" in html
    endpoint.refresh_from_db()
    assert endpoint.last_check_ok is True and endpoint.last_check_latency_ms is not None
    assert endpoint.last_check_message and endpoint.last_check_message in html


def test_test_connection_explains_a_server_that_is_not_there(researcher_client):
    endpoint = ModelEndpoint.objects.create(name="gone", base_url="http://127.0.0.1:9/v1", model_name="m")
    html = researcher_client.post(reverse("endpoints:test", args=[endpoint.pk])).content.decode()
    assert "No answer." in html and 'id="check-error"' in html
    endpoint.refresh_from_db()
    assert endpoint.last_check_ok is False and "connect" in endpoint.last_check_message.lower()


def test_model_output_in_the_check_is_escaped(researcher_client, fake_server):
    fake_server.reply_with = "<script>alert(1)</script>"
    endpoint = ModelEndpoint.objects.create(name="fake", base_url=fake_server.base_url, model_name="fake-model")
    html = researcher_client.post(reverse("endpoints:test", args=[endpoint.pk])).content.decode()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_the_api_registers_and_checks_an_endpoint(researcher_client, fake_server):
    response = researcher_client.post("/api/endpoints/", {"name": "api", "base_url": fake_server.base_url,
                                                          "model_name": "fake-model", "as_assistant": True,
                                                          "default_params": {"max_tokens": 64}},
                                      content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["roles"] == ["student", "assistant"]
    check = researcher_client.post(f"/api/endpoints/{response.json()['id']}/test/").json()
    assert check["ok"] is True and check["answer"] and check["error"] is None and check["latency_ms"] >= 0


def test_the_api_refuses_bad_decoding_settings(researcher_client):
    response = researcher_client.post("/api/endpoints/", {"name": "x", "base_url": "http://127.0.0.1:9/v1", "model_name": "m",
                                                          "default_params": {"top_k": 5}}, content_type="application/json")
    assert response.status_code == 400 and "unknown decoding setting 'top_k'" in response.json()["default_params"][0]


def test_load_demo_registers_smollm2_in_every_role(db):
    from django.core.management import call_command

    call_command("load_demo", "--count", "3")
    endpoint = ModelEndpoint.objects.get()
    assert endpoint.roles == ["student", "teacher", "assistant"] and endpoint.model_name == "smollm2"
