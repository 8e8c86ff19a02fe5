"""Chat pages: the list and a new chat (about a mistake, from the mistakes browser), one conversation, explain my
mistake with similar approved past mistakes cited (a keyword embedder stands in for MiniLM): the page opens the
conversation with the request unanswered, and the conversation's page asks for the answer (see test_consumer)."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.urls import reverse

from pipeline.seeds.salam_finetune import INSTRUCTION
from tests.webapp.chat.conftest import EMBEDDER_PATH as EMBEDDER, approved, conversation
from tests.webapp.review.conftest import make_feedback
from webapp.chat.models import ChatMessage, ChatSession
from webapp.train.models import Checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def mistake(researcher):
    """A student model's wrong answer (with LEMA feedback nobody has reviewed)."""
    return make_feedback(1)[0].attempt


def test_the_list_offers_assistants_and_labels_trained_ones(annotator_client, assistant):
    from webapp.runs.models import Run

    trained = type(assistant).objects.create(name="salam assistant v1", base_url=assistant.base_url, model_name="v1",
                                             as_assistant=True)
    Checkpoint.objects.create(run=Run.objects.create(kind="train", name="t", config={}), step=5, path="/x",
                              is_final=True, endpoint=trained)
    type(assistant).objects.create(name="a teacher only", base_url=assistant.base_url, model_name="t", as_teacher=True)
    html = annotator_client.get(reverse("chat:list")).content.decode()
    assert "salam assistant v1 (trained checkpoint)" in html and "fake assistant (base model)" in html
    assert "a teacher only" not in html


def test_a_new_chat_opens_the_conversation(annotator_client, annotator, assistant):
    response = annotator_client.post(reverse("chat:new"), {"endpoint": assistant.pk})
    chat = ChatSession.objects.get(owner=annotator)
    assert response.status_code == 302 and response["Location"] == chat.get_absolute_url()
    page = annotator_client.get(chat.get_absolute_url()).content.decode()
    assert f'data-socket="/ws/chat/{chat.pk}/"' in page and "chat.js" in page
    assert "data-answer-pending" not in page  # nothing said yet, so nothing to answer


def test_the_list_shows_only_my_conversations(annotator_client, annotator, researcher, assistant):
    conversation(annotator, assistant, title="mine about carrying")
    conversation(researcher, assistant, title="someone else's")
    html = annotator_client.get(reverse("chat:list")).content.decode()
    assert "mine about carrying" in html and "someone else" not in html


def test_a_conversation_page_renders_saved_messages_sanitised(annotator_client, annotator, assistant):
    chat = conversation(annotator, assistant)
    ChatMessage.objects.create(session=chat, role="user", content="What is $x^2$?")
    ChatMessage.objects.create(session=chat, role="assistant", content='<script>window.pwned=1</script> **ok**',
                               status="stopped")
    response = annotator_client.get(chat.get_absolute_url())
    html = response.content.decode()
    assert "<math" in html and "<strong>ok</strong>" in html and "&lt;script&gt;window.pwned=1&lt;/script&gt;" in html
    assert "<script>window.pwned" not in html
    assert 'data-status="stopped"' in html and "Stopped" in html
    assert "script-src 'self'" in response["Content-Security-Policy"]


def test_the_mistakes_browser_links_each_mistake_to_a_chat(researcher_client, mistake):
    listing = researcher_client.get(reverse("gather:attempts") + "?correct=no").content.decode()
    detail = researcher_client.get(reverse("gather:attempt", args=[mistake.pk])).content.decode()
    link = f'{reverse("chat:list")}?attempt={mistake.pk}'
    assert link in listing and link in detail and "Discuss this mistake" in detail


def test_discussing_a_mistake_starts_a_chat_with_it_filled_in(researcher_client, researcher, assistant, mistake):
    page = researcher_client.get(reverse("chat:list") + f"?attempt={mistake.pk}").content.decode()
    assert "Discuss this mistake" in page and mistake.problem.question in page
    response = researcher_client.post(reverse("chat:new"), {"endpoint": assistant.pk, "attempt": mistake.pk})
    chat = ChatSession.objects.get(owner=researcher)
    assert response["Location"] == chat.get_absolute_url()
    assert chat.context == {"question": mistake.problem.question, "answer": mistake.extracted,
                            "gold": mistake.problem.gold_answer, "work": mistake.raw_output, "kind": "mistake",
                            "attempt_id": mistake.pk}
    assert chat.title.startswith("About: Tom has")
    page = researcher_client.get(chat.get_absolute_url()).content.decode()
    assert "What this chat is about" in page and mistake.raw_output in page


def test_annotators_cannot_open_a_student_models_answer_through_chat(annotator_client, assistant, mistake):
    assert annotator_client.get(reverse("chat:list") + f"?attempt={mistake.pk}").status_code == 403
    assert annotator_client.post(reverse("chat:new"), {"endpoint": assistant.pk, "attempt": mistake.pk}).status_code == 403
    assert not ChatSession.objects.exists()


@override_settings(ERRATA_CHAT_EMBEDDER=EMBEDDER, ERRATA_CHAT_RATE_LIMIT=1)
def test_explain_opens_a_conversation_with_the_request_unanswered_and_similar_approved_mistakes_cited(
        annotator_client, annotator, server, assistant):
    cited = approved(2, annotator)  # both about apples
    approved(1, annotator, decision="reject")  # rejected feedback is never cited
    form = {"endpoint": assistant.pk, "question": "Ann has 3 apples and buys 4 more. How many apples?", "answer": "8",
            "gold": "7"}
    response = annotator_client.post(reverse("chat:explain"), form)
    chat = ChatSession.objects.get(owner=annotator)
    assert response.status_code == 302 and response["Location"] == chat.get_absolute_url()
    assert chat.title == "Explain: Ann has 3 apples and buys 4 more. How many apples?"
    assert chat.context["kind"] == "explain" and [c["feedback_id"] for c in chat.context["cited"]] == [f.pk for f in cited]
    (role, content), = chat.messages.values_list("role", "content")
    assert role == "user" and content.startswith("Ann has 3 apples and buys 4 more. How many apples?\nWe get the "
                                                 "answer 8 from the model while the true answer is 7.")
    assert server.stats()["received"] == {}  # no model was asked: the conversation's page streams the answer
    page = annotator_client.get(chat.get_absolute_url()).content.decode()
    assert "data-answer-pending" in page and '<div id="explanation-panel">' in page
    assert 'id="explanation"' not in page and "Similar past mistakes (2)" in page and page.count("similarity") == 2
    for item in cited:
        assert item.problem.question in page
    # Starts have an allowance of their own (the answer takes one from the chat allowance, on the websocket).
    refused = annotator_client.post(reverse("chat:explain"), form)
    assert refused.status_code == 429 and "Too many explanations" in refused.content.decode()
    assert ChatSession.objects.count() == 1


@override_settings(ERRATA_CHAT_EMBEDDER=EMBEDDER)
def test_explain_without_a_gold_answer_cites_nothing_unrelated(annotator_client, annotator, server, assistant):
    approved(1, annotator)
    annotator_client.post(reverse("chat:explain"), {
        "endpoint": assistant.pk, "question": "How many trains leave at noon?", "answer": "3"})
    chat = ChatSession.objects.get(owner=annotator)
    assert chat.context["cited"] == []
    assert [m.content for m in chat.messages.all()] == [
        f"How many trains leave at noon?\nWe get the answer 3 from the model. \n{INSTRUCTION}"]
    page = annotator_client.get(chat.get_absolute_url()).content.decode()
    assert "No similar approved past mistake was found." in page and "data-answer-pending" in page


def test_an_answered_explain_shows_its_reason_and_guideline_escaped_and_asks_for_nothing(
        annotator_client, annotator, assistant):
    chat = conversation(annotator, assistant, context={"question": "2 + 2?", "answer": "5", "kind": "explain",
                                                       "cited": []})
    ChatMessage.objects.create(session=chat, role="user", content="2 + 2?\nWe get the answer 5 from the model.")
    answer = ChatMessage.objects.create(session=chat, role="assistant", content=json.dumps(
        {"reason": "<b>Miscounted</b>", "guideline": "Count again."}))
    page = annotator_client.get(chat.get_absolute_url()).content.decode()
    assert '<dd id="reason">&lt;b&gt;Miscounted&lt;/b&gt;</dd>' in page and '<dd id="guideline">Count again.</dd>' in page
    assert "data-answer-pending" not in page
    answer.status = "stopped"
    answer.save()
    page = annotator_client.get(chat.get_absolute_url()).content.decode()
    assert 'id="reason"' not in page and 'id="raw-reply"' not in page  # a stopped answer explains nothing


def test_explain_needs_a_question_and_an_answer(annotator_client, assistant):
    response = annotator_client.post(reverse("chat:explain"), {"endpoint": assistant.pk, "question": "", "answer": ""})
    assert response.status_code == 400 and not ChatSession.objects.exists()
