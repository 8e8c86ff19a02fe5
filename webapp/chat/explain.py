"""Explain my mistake: a conversation that asks an assistant for SALAM feedback, citing similar past mistakes.

``explain_start`` retrieves the similar approved mistakes and opens the conversation with SALAM's request as its
first message and no answer yet. The page then streams the answer over the chat websocket (a regenerate, which
takes the rate limit; ``services.answer_request`` asks it as SALAM does); the API waits for the whole answer
(``mistake_explain``). The parsed ``{reason, guideline}`` is what the page's panel and the API show.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.template.loader import render_to_string

from pipeline.chat import Mistake, explain_prompt, parse_explanation, title_for
from pipeline.teaching.salam import SalamFeedback
from webapp.chat.models import EXPLAIN, ChatSession, MessageStatus, Role, cited_as_context
from webapp.chat.selectors import conversation_open
from webapp.chat.services import answer_wait, message_add, rate_limit_take, session_create
from webapp.chat.similar import similar_mistakes
from webapp.endpoints.models import ModelEndpoint


@dataclass(frozen=True)
class Explanation:
    session: ChatSession
    feedback: SalamFeedback | None  # None when the assistant did not answer
    error: str
    cited: list[dict]


def explain_start(*, user, endpoint: ModelEndpoint, mistake: Mistake) -> ChatSession:
    """A new explain conversation: the similar approved mistakes in its context, SALAM's request, no answer yet.

    Starts have an allowance of their own (each looks through the approved feedback); the answer, a model
    call, takes one from the chat allowance."""
    rate_limit_take(user_id=user.pk, scope="explain", what="explanations")
    cited = [cited_as_context(case) for case in similar_mistakes(mistake.question)]
    with transaction.atomic():
        session = session_create(owner=user, endpoint=endpoint, mistake=mistake,
                                 extra={"kind": EXPLAIN, "cited": cited}, title=f"Explain: {title_for(mistake.question)}")
        message_add(session_id=session.pk, role=Role.USER, content=explain_prompt(mistake))
    return session


def mistake_explain(*, user, endpoint: ModelEndpoint, mistake: Mistake) -> Explanation:
    """Start an explain conversation and wait for the whole answer (the API's; the page streams it)."""
    rate_limit_take(user_id=user.pk)
    session = explain_start(user=user, endpoint=endpoint, mistake=mistake)
    conversation = conversation_open(session_id=session.pk, user_id=user.pk)
    answer = answer_wait(conversation, conversation.turns)
    session.refresh_from_db()
    return Explanation(session=session, feedback=explain_feedback(answer.content, answer.status), error=answer.error,
                       cited=session.context["cited"])


def explain_feedback(answer: str, status: str) -> SalamFeedback | None:
    """The explanation in an answer: parsed once the answer is complete (``ok`` False: show ``raw``), else None."""
    return parse_explanation(answer) if status == MessageStatus.COMPLETE else None


def explanation_html(answer: str, status: str) -> str:
    """The explanation panel as the conversation's page shows it (autoescaped; "" while there is none)."""
    return render_to_string("chat/explanation.html", {"feedback": explain_feedback(answer, status)}).strip()
