"""Reads for chat: the assistants one may talk to, one's conversations, and a conversation as the consumer holds it."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, QuerySet

from pipeline.chat import CitedCase, Mistake
from pipeline.models import EndpointConfig
from webapp.chat.models import ChatMessage, ChatSession
from webapp.endpoints.models import ModelEndpoint
from webapp.train.models import Checkpoint


def assistant_endpoints() -> QuerySet[ModelEndpoint]:
    """Active endpoints that may act as an assistant, each with ``trained``: served from a training checkpoint."""
    trained = Exists(Checkpoint.objects.filter(endpoint=OuterRef("pk")))
    return ModelEndpoint.objects.filter(is_active=True, as_assistant=True).annotate(trained=trained).order_by("-trained", "name")


def sessions_of(user) -> QuerySet[ChatSession]:
    return (ChatSession.objects.filter(owner=user).annotate(message_count=Count("messages")).select_related("endpoint")
            .order_by("-updated_at", "-id"))


def session_messages(session: ChatSession) -> QuerySet[ChatMessage]:
    return session.messages.order_by("id")


@dataclass
class Conversation:
    """What a websocket consumer keeps of one conversation: who owns it, whom to ask, and the recent turns."""

    session_id: int
    endpoint: EndpointConfig | None  # None: the assistant was deleted or switched off
    endpoint_name: str
    mistake: Mistake | None
    turns: list[dict] = field(default_factory=list)  # {"id", "role", "content"}, oldest first
    cited: list[CitedCase] | None = None  # an explain conversation's similar past mistakes (None: not an explain)


def conversation_open(*, session_id: int, user_id: int) -> Conversation | None:
    """The user's own conversation (None for anyone else's or a missing one), with its last turns loaded."""
    session = ChatSession.objects.select_related("endpoint").filter(pk=session_id, owner_id=user_id).first()
    if session is None:
        return None
    endpoint = session.endpoint if session.endpoint is not None and session.endpoint.is_active else None
    # Enough messages for the turns the model sees, regenerated or failed answers included.
    recent = session.messages.order_by("-id")[: 4 * settings.ERRATA_CHAT_HISTORY_TURNS]
    turns = [message.as_turn() for message in reversed(recent)]
    return Conversation(session_id=session.pk, endpoint=endpoint.to_config() if endpoint else None,
                        endpoint_name=session.endpoint_name, mistake=session.mistake, turns=turns,
                        cited=session.cited_cases)
