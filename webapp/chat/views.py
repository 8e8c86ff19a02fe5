"""Chat pages: my conversations and a new one, one conversation (streamed over ws/chat/<id>/), explain my mistake.

Every signed-in user may chat; a conversation is only ever shown to its owner (404 for anyone else). Starting
a chat about a student model's mistake needs a researcher, as the mistakes browser does. Explain my mistake
opens a conversation with the request unanswered; its page asks for the answer over the websocket.
"""

from __future__ import annotations

from functools import wraps

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from pipeline.markdown import render_markdown
from webapp.chat.explain import explain_feedback, explain_start
from webapp.chat.forms import ExplainForm, NewChatForm
from webapp.chat.models import EXPLAIN, ChatSession, Role
from webapp.chat.selectors import session_messages, sessions_of
from webapp.chat.services import ChatRefused, attempt_mistake, session_create
from webapp.gather.models import Attempt

# Defence in depth beside the sanitiser: even an injected inline script or handler would not run here.
CONTENT_SECURITY_POLICY = "script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"


def strict_scripts(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response

    return wrapper


def _mistake_attempt(request: HttpRequest, attempt_id: int | str | None) -> Attempt | None:
    """The student model's answer a new chat is about; only researchers may open those."""
    if not attempt_id:
        return None
    if not request.user.is_researcher:
        raise PermissionDenied("Discussing a student model's answer is for researchers and admins.")
    return get_object_or_404(Attempt.objects.select_related("problem"), pk=attempt_id)


def _list_page(request: HttpRequest, form: NewChatForm, attempt: Attempt | None, status: int = 200) -> HttpResponse:
    page = Paginator(sessions_of(request.user), 30).get_page(request.GET.get("page"))
    mistake = attempt_mistake(attempt) if attempt else None
    return render(request, "chat/list.html", {"page": page, "form": form, "mistake": mistake}, status=status)


@require_GET
def chat_list(request: HttpRequest) -> HttpResponse:
    attempt = _mistake_attempt(request, request.GET.get("attempt"))
    form = NewChatForm(initial={"attempt": attempt.pk if attempt else None})
    return _list_page(request, form, attempt)


@require_POST
def chat_new(request: HttpRequest) -> HttpResponse:
    form = NewChatForm(request.POST)
    if not form.is_valid():
        return _list_page(request, form, None, status=400)
    attempt = _mistake_attempt(request, form.cleaned_data["attempt"])
    mistake = attempt_mistake(attempt) if attempt else None
    session = session_create(owner=request.user, endpoint=form.cleaned_data["endpoint"], mistake=mistake,
                             extra={"kind": "mistake", "attempt_id": attempt.pk} if attempt else None)
    return redirect(session)


@strict_scripts
@require_GET
def chat_session(request: HttpRequest, pk: int) -> HttpResponse:
    session = get_object_or_404(ChatSession.objects.select_related("endpoint"), pk=pk, owner=request.user)
    messages = [(message, render_markdown(message.content)) for message in session_messages(session)]
    explanation = None
    if session.context.get("kind") == EXPLAIN:
        answer = next((m for m, _ in messages if m.role == Role.ASSISTANT), None)
        explanation = explain_feedback(answer.content, answer.status) if answer else None
    # An explain just started: the page asks for the answer once connected. (Not any unanswered last message:
    # after a reload mid-answer the old socket's answer is still being saved, and a second one would follow it.)
    answer_pending = session.context.get("kind") == EXPLAIN and [m.role for m, _ in messages] == [Role.USER]
    context = {"session": session, "messages": messages, "explanation": explanation, "answer_pending": answer_pending,
               "max_chars": settings.ERRATA_CHAT_MAX_MESSAGE_CHARS}
    return render(request, "chat/session.html", context)


@strict_scripts
@require_http_methods(["GET", "POST"])
def explain(request: HttpRequest) -> HttpResponse:
    form = ExplainForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            session = explain_start(user=request.user, endpoint=form.cleaned_data["endpoint"], mistake=form.mistake())
        except ChatRefused as refused:
            form.add_error(None, refused.message)
            return render(request, "chat/explain.html", {"form": form}, status=429)
        return redirect(session)
    return render(request, "chat/explain.html", {"form": form}, status=400 if form.errors else 200)
