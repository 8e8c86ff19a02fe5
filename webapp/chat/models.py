"""ChatSession and ChatMessage: one user's conversation with one assistant endpoint, message by message."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from pipeline.chat import CitedCase, Mistake
from pipeline.exams.retrieval import PastCase
from webapp.endpoints.models import ModelEndpoint

EXPLAIN = "explain"  # context["kind"] of an "explain my mistake" conversation


class ChatSession(models.Model):
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions")
    endpoint = models.ForeignKey(ModelEndpoint, null=True, blank=True, on_delete=models.SET_NULL, related_name="chat_sessions")
    endpoint_name = models.CharField(max_length=120, help_text="The assistant as named when the chat began.")
    title = models.CharField(max_length=200, blank=True)
    context = models.JSONField(default=dict, blank=True,
                               help_text="What the chat is about: question, answer, gold, attempt id, cited cases.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        indexes = [models.Index(fields=["owner", "-updated_at"])]

    def __str__(self) -> str:
        return self.title or f"Chat {self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("chat:session", args=[self.pk])

    @property
    def mistake(self) -> Mistake | None:
        return Mistake.from_context(self.context)

    @property
    def cited_cases(self) -> list[CitedCase] | None:
        """An explain conversation's similar past mistakes, as its first answer is asked with (None: not an explain)."""
        if self.context.get("kind") != EXPLAIN:
            return None
        return [cited_from_context(case) for case in self.context.get("cited", [])]


def cited_as_context(cited: CitedCase) -> dict:
    """A cited case as an explain conversation's context keeps it (and the page shows it: chat/cited.html)."""
    case = cited.case
    return {"feedback_id": case.case_id, "question": case.question, "answer": case.answer, "gold": case.gold,
            "feedback": cited.feedback, "score": round(cited.score, 3)}


def cited_from_context(data: dict) -> CitedCase:
    # Only wrong answers are cited: feedback is written on mistakes.
    case = PastCase(case_id=data["feedback_id"], question=data["question"], answer=data["answer"], gold=data["gold"],
                    correct=False)
    return CitedCase(case=case, feedback=data["feedback"], score=data["score"])


class Role(models.TextChoices):
    USER = "user", "You"
    ASSISTANT = "assistant", "Assistant"


class MessageStatus(models.TextChoices):
    COMPLETE = "complete", "Complete"
    STOPPED = "stopped", "Stopped"
    FAILED = "failed", "Failed"


class ChatMessage(models.Model):
    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    status = models.CharField(max_length=10, choices=MessageStatus.choices, default=MessageStatus.COMPLETE)
    error = models.TextField(blank=True, help_text="Why a failed answer failed, in plain words.")
    tokens = models.PositiveIntegerField(default=0, help_text="Completion tokens of an answer, as the server counted.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session", "id"]

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"

    def as_turn(self) -> dict:
        return {"id": self.pk, "role": self.role, "content": self.content}
