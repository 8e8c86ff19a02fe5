"""The chat websocket, ws/chat/<id>/: an assistant's answer streamed into the page piece by piece.

Frames in:  {"type": "send", "content"}, {"type": "stop"}, {"type": "regenerate"} (also: answer a last message
that has no answer yet, as the page does on opening an explain conversation just started).
Frames out: {"type": "start", "replaces"}, {"type": "delta", "text"} per piece, {"type": "done", "id", "status",
"html", "error", "tokens"} at the end (``html``: the whole answer rendered and sanitised; the answer to an
explain conversation's request adds ``explanation``: its {reason, guideline} panel, chat/explanation.html
rendered and escaped here, "" for an answer stopped or failed), {"type": "user", "id", "html"} once a sent
message is saved, {"type": "message", ...} for what another tab of the same conversation said (a "done"'s
fields, ``explanation`` included, or a "user"'s), and {"type": "error", "code", "message"} for a message the
chat refused.

Only signed-in users connect (close code 4401), and only to their own conversations (4404; the origin is
checked by ``AllowedHostsOriginValidator`` in ``webapp.asgi``). Pieces go straight to the socket: no
database write and no thread hop per piece. The model is asked from the turns the consumer keeps in memory,
so nothing waits on the database before the request: the user's message is saved once the first piece is
out, the answer once at the end. Stop cancels the task that reads the model's stream, which closes the HTTP stream, so the
model server sees the disconnect and stops generating; the partial answer is saved as stopped. Tabs of one
conversation share a channel-layer group (Redis across processes): finished messages reach the other tabs,
and a stop pressed in any tab stops the answer in whichever process is writing it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import aclosing

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from pipeline.markdown import render_markdown
from pipeline.models import ChatRequest, ModelError, RunUsage
from webapp.chat.clients import model_client
from webapp.chat.explain import explanation_html
from webapp.chat.models import MessageStatus, Role
from webapp.chat.selectors import Conversation, conversation_open
from webapp.chat.services import (
    ChatRefused, answer_request, explains, message_add, message_check, rate_limit_take, turns_to_regenerate,
)

log = logging.getLogger(__name__)
CLOSE_SIGN_IN = 4401  # not signed in
CLOSE_NOT_FOUND = 4404  # no such conversation among the user's own (someone else's looks the same)

_save = database_sync_to_async(message_add)
# The cache is thread-safe: the allowance need not wait for the one thread that does database work.
_take_allowance = sync_to_async(rate_limit_take, thread_sensitive=False)


class ChatConsumer(AsyncJsonWebsocketConsumer):
    conversation: Conversation | None = None
    generation: asyncio.Task | None = None
    streaming = False  # the model's stream is being read (stop may cancel); False while the answer is saved
    answering = False  # from a send or regenerate taken until its "done" (or "not_saved") frame goes out
    gone = False

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_SIGN_IN)
            return
        session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.conversation = await database_sync_to_async(conversation_open)(session_id=session_id, user_id=user.pk)
        if self.conversation is None:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        self.group = f"chat-{session_id}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        self.gone = True
        if self.conversation is None:
            return
        await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.generation is not None and not self.generation.done():
            self.stop_generation()
            await asyncio.wait([self.generation])  # the partial answer is saved as stopped

    # ------------------------------------------------------------------ frames in

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs) -> None:
        try:
            content = json.loads(text_data) if text_data is not None else None
        except ValueError:
            content = None
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        try:
            if kind == "send":
                await self.on_send(content.get("content"))
            elif kind == "regenerate":
                await self.on_regenerate()
            elif kind == "stop":
                await self.on_stop()
            else:
                raise ChatRefused("bad_request", 'Send a JSON object with "type": "send", "stop" or "regenerate".')
        except ChatRefused as refused:
            await self.send_json(refused.as_frame())

    async def on_send(self, content: object) -> None:
        text = message_check(content)
        self.check_ready()
        await _take_allowance(user_id=self.scope["user"].pk)
        turn = {"id": None, "role": Role.USER, "content": text}
        self.remember(turn)
        request = answer_request(self.conversation, self.conversation.turns)
        self.answering = True
        self.generation = asyncio.create_task(self.answer(request, user_turn=turn, replaces=None,
                                                          explains=explains(self.conversation, self.conversation.turns)))

    async def on_regenerate(self) -> None:
        self.check_ready()
        turns, replaces = turns_to_regenerate(self.conversation.turns)
        await _take_allowance(user_id=self.scope["user"].pk)
        self.conversation.turns = turns
        request = answer_request(self.conversation, turns)
        self.answering = True
        self.generation = asyncio.create_task(self.answer(request, user_turn=None, replaces=replaces,
                                                          explains=explains(self.conversation, turns)))

    async def on_stop(self) -> None:
        if not self.stop_generation():  # the answer may be written by this conversation's tab in another process
            await self.channel_layer.group_send(self.group, {"type": "chat.stop"})

    def check_ready(self) -> None:
        if self.answering:
            raise ChatRefused("busy", "The assistant is still answering: wait for it, or stop it first.")
        if self.conversation.endpoint is None:
            raise ChatRefused("unavailable", f"The assistant {self.conversation.endpoint_name!r} is no longer "
                                             "available: start a new chat with another one.")

    def stop_generation(self) -> bool:
        if self.generation is not None and self.streaming:
            self.generation.cancel()
            return True
        return False

    def remember(self, turn: dict, replaces: int | None = None) -> None:
        """Keep the turn for the next request; only as many as the model could be shown are kept."""
        turns = self.conversation.turns
        if replaces is not None:
            turns[:] = [t for t in turns if t["id"] != replaces]
        turns.append(turn)
        del turns[: -4 * settings.ERRATA_CHAT_HISTORY_TURNS]

    # ------------------------------------------------------------------ the answer

    async def save_user_message(self, turn: dict) -> None:
        message = await _save(session_id=self.conversation.session_id, role=Role.USER, content=turn["content"])
        turn["id"] = message.pk
        frame = {"type": "user", "id": message.pk, "html": render_markdown(turn["content"])}
        await self.send_frame(frame)
        await self.tell_others({**frame, "type": "message", "role": Role.USER, "status": message.status}, turn)

    async def answer(self, request: ChatRequest, *, user_turn: dict | None, replaces: int | None,
                     explains: bool) -> None:
        """Stream the answer to the socket, then save it (complete, stopped or failed) and send it rendered.

        The user's message is saved once the first piece has gone out (or the answer ended without one):
        the database write stays out of the time to the first token. ``explains``: the answer is an explain
        conversation's explanation, whose panel goes out with it.
        """
        self.streaming = True
        pieces: list[str] = []
        usage = RunUsage()
        status, error = MessageStatus.COMPLETE, ""
        saving = None
        try:
            await self.send_frame({"type": "start", "replaces": replaces})
            async with aclosing(model_client(self.conversation.endpoint).stream_chat(request, usage=usage)) as stream:
                async for piece in stream:
                    pieces.append(piece)
                    await self.send_frame({"type": "delta", "text": piece})
                    if user_turn is not None and saving is None:
                        saving = asyncio.ensure_future(self.save_user_message(user_turn))
        except asyncio.CancelledError:  # stop, or the socket closed: the stream is closed by now
            status = MessageStatus.STOPPED
        except ModelError as failure:
            status, error = MessageStatus.FAILED, failure.reason
        finally:
            self.streaming = False
        if user_turn is not None and saving is None:
            saving = asyncio.ensure_future(self.save_user_message(user_turn))
        await self.finish("".join(pieces), status=status, error=error, tokens=usage.completion_tokens,
                          saving=saving, replaces=replaces, explains=explains)

    async def finish(self, text: str, *, status: str, error: str, tokens: int, saving: asyncio.Future | None,
                     replaces: int | None, explains: bool) -> None:
        try:
            if saving is not None:
                await saving  # the question is saved before its answer
            message = await _save(session_id=self.conversation.session_id, role=Role.ASSISTANT, content=text,
                                  status=status, error=error, tokens=tokens, replaces=replaces)
        except Exception:
            log.exception("could not save a chat answer (session %s)", self.conversation.session_id)
            self.answering = False
            await self.send_frame(ChatRefused("not_saved", "The answer could not be saved; try again.").as_frame())
            return
        turn = message.as_turn()
        self.remember(turn, replaces)
        frame = {"type": "done", "id": message.pk, "status": status, "html": render_markdown(text), "error": error,
                 "tokens": tokens}
        if explains:
            frame["explanation"] = explanation_html(text, status)
        self.answering = False  # the next message may come as soon as "done" is out, before the other tabs hear
        await self.send_frame(frame)
        await self.tell_others({**frame, "type": "message", "role": Role.ASSISTANT, "replaces": replaces}, turn, replaces)

    # ------------------------------------------------------------------ frames out, other tabs

    async def send_frame(self, frame: dict) -> None:
        if not self.gone:
            await self.send_json(frame)

    async def tell_others(self, frame: dict, turn: dict, replaces: int | None = None) -> None:
        event = {"type": "chat.message", "sender": self.channel_name, "frame": frame, "turn": turn, "replaces": replaces}
        await self.channel_layer.group_send(self.group, event)

    async def chat_message(self, event: dict) -> None:
        """What another tab of this conversation said (in this process or another)."""
        if event["sender"] != self.channel_name:
            self.remember(event["turn"], event["replaces"])
            await self.send_frame(event["frame"])

    async def chat_stop(self, event: dict) -> None:
        self.stop_generation()
