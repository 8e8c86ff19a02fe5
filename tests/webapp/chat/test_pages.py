"""Chat pages: the list and a new chat (about a mistake, from the mistakes browser), one conversation, explain my
mistake with similar approved past mistakes cited (a keyword embedder stands in for MiniLM)."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.urls import reverse

from tests.webapp.chat.conftest import EMBEDDER_PATH as EMBEDDER, conversation
from tests.webapp.review.conftest import make_feedback
from webapp.chat.models import ChatMessage, ChatSession
from webapp.review.models import Review
from webapp.review.services import queue_create, review_submit
from webapp.train.models import Checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def mistake(researcher):
    """A student model's wrong answer (with LEMA feedback nobody has reviewed)."""
    return make_feedback(1)[0].attempt


def approved(count: int, annotator, *, method: str = "lema", decision: str = "approve"):
    feedback = make_feedback(count, method=method)
    queue = queue_create(name=f"approved {method}", feedback=feedback, annotators=[annotator])
    for review in Review.objects.filter(queue=queue):
        review_submit(review_id=review.pk, user=annotator, version=0, decision=decision)
    return feedback


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


@override_settings(ERRATA_CHAT_EMBEDDER=EMBEDDER)
def test_explain_shows_reason_guideline_and_cites_similar_approved_mistakes(annotator_client, annotator, server, assistant):
    cited = approved(2, annotator)  # both about apples
    approved(1, annotator, decision="reject")  # rejected feedback is never cited
    feedback = {"reason": "The sum was miscounted.", "guideline": "Add the units first, then the tens."}
    server.configure(replies=[["We get the answer 8", json.dumps(feedback)]])
    response = annotator_client.post(reverse("chat:explain"), {
        "endpoint": assistant.pk, "question": "Ann has 3 apples and buys 4 more. How many apples?", "answer": "8",
        "gold": "7"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "The sum was miscounted." in html and "Add the units first, then the tens." in html
    assert html.count("Approved feedback") == 0 and html.count("similarity") == 2
    for item in cited:
        assert item.problem.question in html
    chat = ChatSession.objects.get(owner=annotator)
    assert chat.context["kind"] == "explain" and [c["feedback_id"] for c in chat.context["cited"]] == [f.pk for f in cited]
    sent = server.bodies()[-1]["messages"]
    assert sent[0]["role"] == "system" and "[1] " in sent[0]["content"] and "[2] " in sent[0]["content"]
    assert sent[1]["content"].startswith("Ann has 3 apples and buys 4 more. How many apples?\nWe get the answer 8 from "
                                         "the model while the true answer is 7.")
    page = annotator_client.get(chat.get_absolute_url()).content.decode()
    assert "Add the units first, then the tens." in page and "Similar past mistakes (2)" in page


@override_settings(ERRATA_CHAT_EMBEDDER=EMBEDDER)
def test_explain_cites_nothing_unrelated_and_shows_a_raw_reply(annotator_client, annotator, server, assistant):
    approved(1, annotator)
    server.configure(reply_with="You should have counted the trains twice.")
    html = annotator_client.post(reverse("chat:explain"), {
        "endpoint": assistant.pk, "question": "How many trains leave at noon?", "answer": "3"}).content.decode()
    assert "No similar approved past mistake was found." in html
    assert "did not answer in the reason/guideline form" in html and "You should have counted the trains twice." in html
    assert len(server.bodies()[-1]["messages"]) == 1


def test_explain_needs_a_question_and_an_answer(annotator_client, assistant):
    response = annotator_client.post(reverse("chat:explain"), {"endpoint": assistant.pk, "question": "", "answer": ""})
    assert response.status_code == 400 and not ChatSession.objects.exists()
