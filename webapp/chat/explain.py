"""Explain my mistake: ask an assistant for SALAM feedback on a question and an answer, citing similar past mistakes.

The request and the reply are saved as a new conversation (so one can ask on from there); the parsed
``{reason, guideline}`` and the cited cases are what the page and the API show.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction

from pipeline.chat import CitedCase, Mistake, explain_messages, explain_prompt, parse_explanation, title_for
from pipeline.models import chat_once
from pipeline.teaching.salam import SalamFeedback
from webapp.chat.models import ChatSession, Role
from webapp.chat.services import answer_status, message_add, rate_limit_take, session_create
from webapp.chat.similar import similar_mistakes
from webapp.endpoints.models import ModelEndpoint


@dataclass(frozen=True)
class Explanation:
    session: ChatSession
    feedback: SalamFeedback | None  # None when the assistant did not answer
    error: str
    cited: list[dict]


def cited_context(cited: CitedCase) -> dict:
    case = cited.case
    return {"feedback_id": case.case_id, "question": case.question, "answer": case.answer, "gold": case.gold,
            "feedback": cited.feedback, "score": round(cited.score, 3)}


def mistake_explain(*, user, endpoint: ModelEndpoint, mistake: Mistake) -> Explanation:
    """Ask ``endpoint`` why ``mistake`` went wrong; the exchange becomes a saved conversation."""
    rate_limit_take(user_id=user.pk)
    cited = similar_mistakes(mistake.question)
    result = chat_once(endpoint.to_config(), explain_messages(mistake, cited))
    status, error = answer_status(result)
    context = [cited_context(case) for case in cited]
    with transaction.atomic():
        session = session_create(owner=user, endpoint=endpoint, mistake=mistake, extra={"kind": "explain", "cited": context},
                                 title=f"Explain: {title_for(mistake.question)}")
        message_add(session_id=session.pk, role=Role.USER, content=explain_prompt(mistake))
        message_add(session_id=session.pk, role=Role.ASSISTANT, content=result.text, status=status, error=error,
                    tokens=result.completion_tokens)
    session.refresh_from_db()
    return Explanation(session=session, feedback=parse_explanation(result.text) if result.ok else None, error=error,
                       cited=context)
