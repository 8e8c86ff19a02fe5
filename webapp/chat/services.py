"""Writes for chat: start a conversation, check and save messages, the per-user rate limit, one answer without streaming."""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from pipeline.chat import Mistake, chat_messages, explain_messages, title_for
from pipeline.models import ChatRequest, ChatResult, chat_once
from pipeline.prompts import gold_with_option, render_question
from pipeline.teaching.templates import student_answer
from webapp.chat.models import ChatMessage, ChatSession, MessageStatus, Role
from webapp.chat.selectors import Conversation, conversation_open
from webapp.endpoints.models import ModelEndpoint
from webapp.gather.models import Attempt


class ChatRefused(Exception):
    """A message the chat will not take; ``code`` for programs, the message for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def as_frame(self) -> dict:
        return {"type": "error", "code": self.code, "message": self.message}


def session_create(*, owner, endpoint: ModelEndpoint, mistake: Mistake | None = None, extra: dict | None = None,
                   title: str = "") -> ChatSession:
    """A new conversation with ``endpoint``, about ``mistake`` when given (``extra`` adds to its context)."""
    context = {**(mistake.as_context() if mistake else {}), **(extra or {})}
    if not title and mistake:
        title = f"About: {title_for(mistake.question)}"
    return ChatSession.objects.create(owner=owner, endpoint=endpoint, endpoint_name=endpoint.name, title=title,
                                      context=context)


def attempt_mistake(attempt: Attempt) -> Mistake:
    """A student model's answer as a chat's subject: the question with its options, the answer, gold, the work."""
    problem = attempt.problem.as_record()
    return Mistake(question=render_question(problem), answer=student_answer(problem, attempt.as_record()),
                   gold=gold_with_option(problem), work=attempt.raw_output)


def message_check(content: object) -> str:
    """The message, stripped, when the chat takes it; ChatRefused (empty, too_long, bad_request) otherwise."""
    if not isinstance(content, str):
        raise ChatRefused("bad_request", "A message must be text.")
    text = content.strip()
    if not text:
        raise ChatRefused("empty", "Write something first.")
    limit = settings.ERRATA_CHAT_MAX_MESSAGE_CHARS
    if len(text) > limit:
        raise ChatRefused("too_long", f"Messages are limited to {limit:,} characters; this one has {len(text):,}. "
                                      "Shorten it or split it in two.")
    return text


def rate_limit_keys(user_id: int, scope: str = "chat") -> tuple[str, str]:
    """The cache keys of a user's allowance: the count, and when its window opened."""
    return f"{scope}-rate:{user_id}", f"{scope}-rate:{user_id}:start"


def rate_limit_take(*, user_id: int, scope: str = "chat", what: str = "messages") -> None:
    """Count one of ``what`` against the user's allowance for ``scope`` (model answers: "chat"; explain
    conversations started: "explain"); ChatRefused("rate_limited") when it is spent.

    The window opens with the user's first message and lasts ERRATA_CHAT_RATE_WINDOW_S. The count lives in the
    cache, so with Redis (REDIS_URL) every web process shares it; ``incr`` is atomic there and keeps the expiry.
    """
    window, limit = settings.ERRATA_CHAT_RATE_WINDOW_S, settings.ERRATA_CHAT_RATE_LIMIT
    key, started = rate_limit_keys(user_id, scope)
    now = time.time()
    if cache.add(key, 0, timeout=window):
        cache.set(started, now, timeout=window)
    try:
        count = cache.incr(key)
    except ValueError:  # the window closed between add and incr: this message opens the next one
        cache.set(key, 1, timeout=window)
        cache.set(started, now, timeout=window)
        count = 1
    if count > limit:
        wait = max(1, math.ceil(cache.get(started, now) + window - now))
        raise ChatRefused("rate_limited", f"Too many {what}: at most {limit} every {window} s. "
                                          f"Try again in {wait} s.")


@transaction.atomic
def message_add(*, session_id: int, role: str, content: str, status: str = MessageStatus.COMPLETE, error: str = "",
                tokens: int = 0, replaces: int | None = None) -> ChatMessage:
    """Save one message (an answer may replace an earlier answer: regenerate); the conversation moves to the top."""
    message = ChatMessage.objects.create(session_id=session_id, role=role, content=content, status=status,
                                         error=error, tokens=tokens)
    if replaces is not None:
        ChatMessage.objects.filter(pk=replaces, session_id=session_id, role=Role.ASSISTANT).delete()
    changes = {"updated_at": timezone.now()}
    if role == Role.USER and not ChatSession.objects.filter(pk=session_id).exclude(title="").exists():
        changes["title"] = title_for(content)
    ChatSession.objects.filter(pk=session_id).update(**changes)
    return message


def answer_status(result: ChatResult) -> tuple[str, str]:
    return (MessageStatus.COMPLETE, "") if result.ok else (MessageStatus.FAILED, result.error or "no answer")


def chat_answer(*, session: ChatSession, user, content: str | None, regenerate: bool = False) -> list[ChatMessage]:
    """Send a message (or regenerate the last answer) and wait for the whole answer: the API's chat.

    Returns the messages saved (the user's, when sent, and the answer). ChatRefused as the websocket would.
    """
    conversation = conversation_open(session_id=session.pk, user_id=user.pk)
    if conversation is None or conversation.endpoint is None:
        raise ChatRefused("unavailable", f"The assistant {session.endpoint_name!r} is no longer available.")
    text = None if regenerate else message_check(content)
    turns, replaces = conversation.turns, None
    if regenerate:
        turns, replaces = turns_to_regenerate(turns)
    rate_limit_take(user_id=user.pk)
    saved = []
    if text is not None:
        saved.append(message_add(session_id=session.pk, role=Role.USER, content=text))
        turns = turns + [saved[-1].as_turn()]
    saved.append(answer_wait(conversation, turns, replaces=replaces))
    return saved


def answer_wait(conversation: Conversation, turns: list[dict], *, replaces: int | None = None) -> ChatMessage:
    """Ask for the whole answer to ``turns`` and save it (complete or failed); the caller took the allowance."""
    result = chat_once(conversation.endpoint, list(answer_request(conversation, turns).messages))
    status, error = answer_status(result)
    return message_add(session_id=conversation.session_id, role=Role.ASSISTANT, content=result.text, status=status,
                       error=error, tokens=result.completion_tokens, replaces=replaces)


def turns_to_regenerate(turns: list[dict]) -> tuple[list[dict], int | None]:
    """The turns to answer again (up to the last user message) and the answer that the new one replaces."""
    if not any(turn["role"] == Role.USER for turn in turns):
        raise ChatRefused("nothing_to_regenerate", "There is no message to answer again yet.")
    if turns[-1]["role"] == Role.ASSISTANT:
        return turns[:-1], turns[-1]["id"]
    return turns, None


def explains(conversation: Conversation, turns: list[dict]) -> bool:
    """Whether the answer to ``turns`` is an explain conversation's explanation: the answer to its first message."""
    return conversation.cited is not None and [turn["role"] for turn in turns] == [Role.USER]


def answer_request(conversation: Conversation, turns: list[dict]) -> ChatRequest:
    """What the model is asked for the next answer: the bounded history, the mistake in the system prompt.

    An explanation is asked as SALAM asks (its prompt, the cited cases before it), so an assistant trained on
    SALAM's data sees what it learnt and answers ``{"reason", "guideline"}``.
    """
    if explains(conversation, turns):
        messages = explain_messages(conversation.mistake, conversation.cited)
    else:
        messages = chat_messages(turns, max_turns=settings.ERRATA_CHAT_HISTORY_TURNS, mistake=conversation.mistake)
    return ChatRequest(messages=messages, key=f"chat-{conversation.session_id}")
