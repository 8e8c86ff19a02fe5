"""The chat API: my conversations only, a message answered whole, regenerate, explain, and the same refusals."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings

from tests.webapp.chat.conftest import EMBEDDER_PATH, conversation
from tests.webapp.review.conftest import make_feedback
from webapp.chat.models import ChatMessage, ChatSession

pytestmark = pytest.mark.django_db


def test_start_a_chat_and_talk_through_the_api(annotator_client, annotator, server, assistant):
    server.configure(replies=[["carry", "You forgot to **carry** the one."]])
    created = annotator_client.post("/api/chat-sessions/", {"endpoint": assistant.pk}, content_type="application/json")
    assert created.status_code == 201, created.content
    chat_id = created.json()["id"]
    sent = annotator_client.post(f"/api/chat-sessions/{chat_id}/messages/", {"content": "Did I forget to carry?"},
                                 content_type="application/json")
    assert sent.status_code == 201
    user, answer = sent.json()
    assert (user["role"], user["content"]) == ("user", "Did I forget to carry?")
    assert (answer["role"], answer["status"], answer["html"]) == (
        "assistant", "complete", "<p>You forgot to <strong>carry</strong> the one.</p>\n")
    listed = annotator_client.get(f"/api/chat-sessions/{chat_id}/messages/").json()
    assert [m["id"] for m in listed] == [user["id"], answer["id"]]
    sessions = annotator_client.get("/api/chat-sessions/").json()["results"]
    assert [s["title"] for s in sessions] == ["Did I forget to carry?"]


def test_regenerate_replaces_the_last_answer(annotator_client, annotator, server, assistant):
    chat = conversation(annotator, assistant)
    annotator_client.post(f"/api/chat-sessions/{chat.pk}/messages/", {"content": "hi"}, content_type="application/json")
    server.configure(reply_with="A second answer.")
    again = annotator_client.post(f"/api/chat-sessions/{chat.pk}/regenerate/")
    assert again.status_code == 201 and [m["content"] for m in again.json()] == ["A second answer."]
    assert list(ChatMessage.objects.filter(session=chat).values_list("content", flat=True)) == ["hi", "A second answer."]


def test_nothing_to_regenerate_is_a_clear_400(annotator_client, annotator, assistant):
    chat = conversation(annotator, assistant)
    response = annotator_client.post(f"/api/chat-sessions/{chat.pk}/regenerate/")
    assert response.status_code == 400 and response.json()["code"] == "nothing_to_regenerate"


@override_settings(ERRATA_CHAT_MAX_MESSAGE_CHARS=10)
def test_an_over_long_message_is_a_400_with_the_reason(annotator_client, annotator, assistant):
    chat = conversation(annotator, assistant)
    response = annotator_client.post(f"/api/chat-sessions/{chat.pk}/messages/", {"content": "x" * 11},
                                     content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"code": "too_long", "detail": "Messages are limited to 10 characters; this one has 11. "
                                                             "Shorten it or split it in two."}


@override_settings(ERRATA_CHAT_RATE_LIMIT=2)
def test_a_flood_is_a_429(annotator_client, annotator, assistant):
    chat = conversation(annotator, assistant)
    codes = [annotator_client.post(f"/api/chat-sessions/{chat.pk}/messages/", {"content": f"m{n}"},
                                   content_type="application/json").status_code for n in range(3)]
    assert codes == [201, 201, 429]


def test_another_users_conversation_is_not_found(researcher_client, annotator, assistant):
    chat = conversation(annotator, assistant)
    assert researcher_client.get(f"/api/chat-sessions/{chat.pk}/").status_code == 404
    assert researcher_client.post(f"/api/chat-sessions/{chat.pk}/messages/", {"content": "x"},
                                  content_type="application/json").status_code == 404
    assert researcher_client.get("/api/chat-sessions/").json()["results"] == []


def test_a_switched_off_assistant_is_refused(annotator_client, annotator, assistant):
    chat = conversation(annotator, assistant)
    assistant.is_active = False
    assistant.save()
    response = annotator_client.post(f"/api/chat-sessions/{chat.pk}/messages/", {"content": "x"},
                                     content_type="application/json")
    assert response.status_code == 409 and response.json()["code"] == "unavailable"
    created = annotator_client.post("/api/chat-sessions/", {"endpoint": assistant.pk}, content_type="application/json")
    assert created.status_code == 400  # no new chats with it either


def test_assistants_are_listed_for_everyone(annotator_client, assistant):
    assert annotator_client.get("/api/chat-sessions/assistants/").json() == [
        {"id": assistant.pk, "name": "fake assistant", "model_name": "fake-model", "trained": False}]


def test_a_chat_about_a_mistake_needs_a_researcher(client, annotator, researcher, assistant):
    attempt = make_feedback(1)[0].attempt
    body = {"endpoint": assistant.pk, "attempt": attempt.pk}
    client.force_login(annotator)
    assert client.post("/api/chat-sessions/", body, content_type="application/json").status_code == 403
    client.force_login(researcher)
    created = client.post("/api/chat-sessions/", body, content_type="application/json")
    assert created.status_code == 201 and created.json()["context"]["attempt_id"] == attempt.pk


@override_settings(ERRATA_CHAT_EMBEDDER=EMBEDDER_PATH, ERRATA_CHAT_RATE_LIMIT=1)
def test_explain_through_the_api_waits_for_the_whole_answer(annotator_client, annotator, server, assistant):
    reply = json.dumps({"reason": "r", "guideline": "g"})
    server.configure(reply_with=reply)
    explain = {"endpoint": assistant.pk, "question": "2 + 2?", "answer": "5"}
    response = annotator_client.post("/api/chat-sessions/explain/", explain, content_type="application/json")
    assert response.status_code == 201
    body = response.json()
    assert (body["ok"], body["reason"], body["guideline"], body["cited"]) == (True, "r", "g", [])
    chat = ChatSession.objects.get(pk=body["session"])
    assert chat.owner == annotator and chat.context["kind"] == "explain"
    assert [(m.role, m.content) for m in chat.messages.all()] == [
        ("user", server.bodies()[-1]["messages"][0]["content"]), ("assistant", reply)]
    assert server.stats()["received"] == {"chat": 1}  # one request, not streamed
    again = annotator_client.post("/api/chat-sessions/explain/", explain, content_type="application/json")
    assert again.status_code == 429 and ChatSession.objects.count() == 1  # refused before anything is saved
