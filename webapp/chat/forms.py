"""Chat forms: start a conversation with an assistant; explain my mistake."""

from __future__ import annotations

from django import forms
from django.conf import settings

from pipeline.chat import Mistake
from webapp.chat.selectors import assistant_endpoints

ANSWER_CHARS = 4000


class AssistantField(forms.ModelChoiceField):
    """Active assistants; a trained checkpoint says so beside its name."""

    def __init__(self, **kwargs):
        super().__init__(queryset=assistant_endpoints(), empty_label=None, label="Assistant", **kwargs)

    def label_from_instance(self, endpoint) -> str:
        return f"{endpoint.name} (trained checkpoint)" if getattr(endpoint, "trained", False) else f"{endpoint.name} (base model)"


class NewChatForm(forms.Form):
    endpoint = AssistantField()
    attempt = forms.IntegerField(required=False, widget=forms.HiddenInput)


class ExplainForm(forms.Form):
    endpoint = AssistantField()
    question = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), max_length=settings.ERRATA_CHAT_MAX_MESSAGE_CHARS,
                               help_text="The problem as you were given it, options included.")
    answer = forms.CharField(label="My answer", widget=forms.Textarea(attrs={"rows": 3}), max_length=ANSWER_CHARS)
    gold = forms.CharField(label="The correct answer", required=False, max_length=ANSWER_CHARS,
                           help_text="Optional: when you know it, the assistant can say where you went astray.")

    def mistake(self) -> Mistake:
        data = self.cleaned_data
        return Mistake(question=data["question"].strip(), answer=data["answer"].strip(), gold=data["gold"].strip())
