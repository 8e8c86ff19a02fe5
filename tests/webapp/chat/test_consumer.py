"""The chat websocket against a streaming fake OpenAI server over real HTTP: pieces arrive in order and the answer is
saved once; stop closes the upstream stream; regenerate replaces; refusals come as clear frames or close codes; an
explain conversation's answer is asked as SALAM asks and its "done" brings the explanation panel."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings

from pipeline.chat import SYSTEM_PROMPT, Mistake, explain_messages, explain_prompt
from tests.webapp.chat.conftest import EMBEDDER_PATH, STORY, approved, chat_socket, communicator, frames_until
from webapp.chat.consumers import CLOSE_NOT_FOUND, CLOSE_SIGN_IN
from webapp.chat.explain import explain_start
from webapp.chat.models import ChatMessage
from webapp.chat.similar import similar_mistakes

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@database_sync_to_async
def saved(chat) -> list[tuple[str, str, str]]:
    return list(ChatMessage.objects.filter(session=chat).order_by("id").values_list("role", "content", "status"))


async def test_an_answer_streams_in_order_in_several_pieces_and_is_saved_once(server, chat, annotator):
    server.reply_with = STORY
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "Why did I get 15 + 17 wrong?"})
        frames = await frames_until(socket, "done")
    deltas = [frame["text"] for frame in frames if frame["type"] == "delta"]
    assert frames[0] == {"type": "start", "replaces": None}
    assert len(deltas) >= 5
    assert "".join(deltas) == STORY  # every piece, in order
    done = frames[-1]
    assert done["status"] == "complete" and done["html"] == f"<p>{STORY.strip()}</p>\n" and done["tokens"] > 0
    assert await saved(chat) == [("user", "Why did I get 15 + 17 wrong?", "complete"), ("assistant", STORY, "complete")]
    sent = server.bodies()[-1]
    assert sent["stream"] is True
    assert sent["messages"][0]["role"] == "system" and sent["messages"][-1] == {
        "role": "user", "content": "Why did I get 15 + 17 wrong?"}


async def test_the_users_message_is_confirmed_with_its_id_and_rendered_html(server, chat, annotator):
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "Is $x^2$ **always** positive?"})
        frames = await frames_until(socket, "done")
    user = next(frame for frame in frames if frame["type"] == "user")
    assert "<math" in user["html"] and "<strong>always</strong>" in user["html"]
    assert (await saved(chat))[0][1] == "Is $x^2$ **always** positive?"
    assert (await database_sync_to_async(ChatMessage.objects.get)(pk=user["id"])).role == "user"


async def test_stop_mid_stream_saves_the_partial_answer_and_closes_the_upstream_stream(server, chat, annotator):
    server.configure(reply_with=STORY, stream_chunks=100, stream_delay_s=0.03)  # three seconds of answer
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "Tell me a long story."})
        pieces = []
        while len(pieces) < 3:
            frame = await socket.receive_json_from(timeout=5)
            if frame["type"] == "delta":
                pieces.append(frame["text"])
        await socket.send_json_to({"type": "stop"})
        frames = await frames_until(socket, "done")
    done = frames[-1]
    assert done["status"] == "stopped"
    answer = (await saved(chat))[-1]
    assert answer[0] == "assistant" and answer[2] == "stopped"
    assert STORY.startswith(answer[1]) and "".join(pieces) in answer[1] and len(answer[1]) < len(STORY) / 2
    for _ in range(50):  # the fake server notices the hang-up at its next write
        if server.stats()["outcomes"].get("stream_cut"):
            break
        await asyncio.sleep(0.05)
    stats = server.stats()
    assert stats["outcomes"].get("stream_cut") == 1 and stats["answered_by_content"] == {}  # never finished


async def test_closing_the_socket_mid_stream_stops_the_answer_and_saves_it_as_stopped(server, chat, annotator):
    server.configure(reply_with=STORY, stream_chunks=100, stream_delay_s=0.03)
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "A long one, please."})
        await frames_until(socket, "delta")
    assert [(role, status) for role, _, status in await saved(chat)] == [("user", "complete"), ("assistant", "stopped")]


async def test_regenerate_replaces_the_last_answer(server, chat, annotator):
    server.configure(replies=[["first", "Answer one."]], stream_chunks=2)
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "first question"})
        first = (await frames_until(socket, "done"))[-1]
        server.configure(replies=[["first", "Answer two, better."]], stream_chunks=2)
        await socket.send_json_to({"type": "regenerate"})
        frames = await frames_until(socket, "done")
    assert frames[0] == {"type": "start", "replaces": first["id"]}
    assert await saved(chat) == [("user", "first question", "complete"), ("assistant", "Answer two, better.", "complete")]
    # The model was asked the same question again, without the answer being replaced.
    assert [m["role"] for m in server.bodies()[-1]["messages"]] == ["system", "user"]


async def test_the_model_sees_the_conversation_so_far(server, chat, annotator):
    server.configure(stream_chunks=2)
    async with chat_socket(chat.pk, annotator) as socket:
        for question in ("one", "two"):
            await socket.send_json_to({"type": "send", "content": question})
            await frames_until(socket, "done")
    roles = [(m["role"], m["content"]) for m in server.bodies()[-1]["messages"]][1:]
    assert [role for role, _ in roles] == ["user", "assistant", "user"]
    assert roles[0][1] == "one" and roles[2][1] == "two"


async def test_a_model_answer_with_markup_comes_back_sanitised(server, chat, annotator):
    payload = 'See <script>window.pwned = 1</script> and <img src=x onerror="window.pwned = 1"> and **this**.'
    server.configure(reply_with=payload, stream_chunks=4)
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "Show me markup"})
        frames = await frames_until(socket, "done")
    html = frames[-1]["html"]
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in html and "<strong>this</strong>" in html
    assert "".join(f["text"] for f in frames if f["type"] == "delta") == payload  # deltas are text; the page shows them as text


@override_settings(ERRATA_CHAT_MAX_MESSAGE_CHARS=50)
async def test_an_over_long_message_is_refused_with_a_clear_frame(server, chat, annotator):
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "x" * 51})
        frame = await socket.receive_json_from()
    assert frame == {"type": "error", "code": "too_long",
                     "message": "Messages are limited to 50 characters; this one has 51. Shorten it or split it in two."}
    assert await saved(chat) == [] and server.stats()["received"] == {}


@override_settings(ERRATA_CHAT_RATE_LIMIT=3)
async def test_a_flood_is_rate_limited_with_a_clear_frame(server, chat, annotator):
    async with chat_socket(chat.pk, annotator) as socket:
        for n in range(3):
            await socket.send_json_to({"type": "send", "content": f"message {n}"})
            await frames_until(socket, "done")
        await socket.send_json_to({"type": "send", "content": "one too many"})
        frame = await socket.receive_json_from()
    assert frame["type"] == "error" and frame["code"] == "rate_limited"
    assert frame["message"].startswith("Too many messages: at most 3 every 60 s. Try again in ")
    assert len(await saved(chat)) == 6


async def test_a_second_message_while_answering_is_refused_as_busy(server, chat, annotator):
    server.configure(stream_chunks=50, stream_delay_s=0.02)
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "send", "content": "first"})
        await frames_until(socket, "delta")
        await socket.send_json_to({"type": "send", "content": "second"})
        frames = await frames_until(socket, "error")
        await socket.send_json_to({"type": "stop"})
        await frames_until(socket, "done")
    assert frames[-1]["code"] == "busy"


@pytest.mark.parametrize("frame", ["not json", '{"type": "dance"}', '{"type": "send", "content": 7}', '{"type": "send", "content": "  "}'])
async def test_a_malformed_frame_gets_an_error_and_the_socket_stays_open(server, chat, annotator, frame):
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_to(text_data=frame)
        error = await socket.receive_json_from()
        await socket.send_json_to({"type": "send", "content": "still there?"})
        done = (await frames_until(socket, "done"))[-1]
    assert error["type"] == "error" and error["code"] in {"bad_request", "empty"}
    assert done["status"] == "complete"


async def test_a_model_failure_is_saved_and_reported(server, chat, annotator):
    server.configure(fail_first=100, faults=["500"])
    with override_settings(ERRATA_MODEL_MAX_RETRIES=0):
        async with chat_socket(chat.pk, annotator) as socket:
            await socket.send_json_to({"type": "send", "content": "hello?"})
            done = (await frames_until(socket, "done"))[-1]
    assert done["status"] == "failed" and "500" in done["error"]
    assert (await saved(chat))[-1][2] == "failed"


async def test_anonymous_connections_are_refused(chat):
    socket = await communicator(chat.pk)
    assert await socket.connect() == (False, CLOSE_SIGN_IN)


async def test_another_users_conversation_is_refused(chat, annotator, researcher):
    socket = await communicator(chat.pk, user=researcher)
    assert await socket.connect() == (False, CLOSE_NOT_FOUND)
    missing = await communicator(chat.pk + 1000, user=annotator)
    assert await missing.connect() == (False, CLOSE_NOT_FOUND)


async def test_a_foreign_origin_is_refused(chat, annotator):
    socket = await communicator(chat.pk, user=annotator, origin=b"http://evil.example")
    connected, _ = await socket.connect()
    assert not connected


async def test_another_tab_sees_the_messages_and_can_stop_the_answer(server, chat, annotator):
    server.configure(reply_with=STORY, stream_chunks=100, stream_delay_s=0.03)
    async with chat_socket(chat.pk, annotator) as writer, chat_socket(chat.pk, annotator) as watcher:
        await writer.send_json_to({"type": "send", "content": "from the first tab"})
        await frames_until(writer, "delta")
        seen = await frames_until(watcher, "message")
        await watcher.send_json_to({"type": "stop"})
        done = (await frames_until(writer, "done"))[-1]
        answer = await frames_until(watcher, "message")
    assert seen[-1]["role"] == "user" and "from the first tab" in seen[-1]["html"]
    assert done["status"] == "stopped"
    assert answer[-1]["role"] == "assistant" and answer[-1]["id"] == done["id"] and answer[-1]["status"] == "stopped"


@override_settings(ERRATA_CHAT_EMBEDDER=EMBEDDER_PATH, ERRATA_CHAT_RATE_LIMIT=1)
async def test_an_explain_answer_streams_and_done_brings_its_reason_and_guideline_escaped(server, assistant, annotator):
    await database_sync_to_async(approved)(2, annotator)
    reply = json.dumps({"reason": "You added <b>4</b> twice.", "guideline": "Count <script>x</script> once."})
    server.configure(reply_with=reply, stream_chunks=6)
    mistake = Mistake(question="Ann has 3 apples and buys 4 more. How many apples?", answer="8", gold="7")
    chat = await database_sync_to_async(explain_start)(user=annotator, endpoint=assistant, mistake=mistake)
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "regenerate"})  # what the page sends on opening it
        frames = await frames_until(socket, "done")
        await socket.send_json_to({"type": "send", "content": "And why?"})
        refused = await socket.receive_json_from()
    deltas = [frame["text"] for frame in frames if frame["type"] == "delta"]
    assert frames[0] == {"type": "start", "replaces": None} and len(deltas) >= 5 and "".join(deltas) == reply
    panel = frames[-1]["explanation"]
    assert '<dd id="reason">You added &lt;b&gt;4&lt;/b&gt; twice.</dd>' in panel
    assert '<dd id="guideline">Count &lt;script&gt;x&lt;/script&gt; once.</dd>' in panel
    assert await saved(chat) == [("user", explain_prompt(mistake), "complete"), ("assistant", reply, "complete")]
    # Asked as SALAM asks, the cited cases read back from the conversation's context.
    cited = await database_sync_to_async(similar_mistakes)(mistake.question)
    assert len(cited) == 2 and server.bodies()[-1]["messages"] == explain_messages(mistake, cited)
    assert refused["code"] == "rate_limited"  # the one allowance went to the answer, and only to it


async def test_an_explain_reply_that_is_not_json_comes_raw_and_a_follow_up_brings_no_panel(server, assistant,
                                                                                          annotator):
    server.configure(replies=[["We get the answer", "Count the <i>trains</i> twice."]], stream_chunks=3)
    mistake = Mistake(question="How many trains leave at noon?", answer="3")
    chat = await database_sync_to_async(explain_start)(user=annotator, endpoint=assistant, mistake=mistake)
    async with chat_socket(chat.pk, annotator) as socket:
        await socket.send_json_to({"type": "regenerate"})
        done = (await frames_until(socket, "done"))[-1]
        await socket.send_json_to({"type": "send", "content": "Why twice?"})
        follow_up = (await frames_until(socket, "done"))[-1]
    assert "did not answer in the reason/guideline form" in done["explanation"]
    assert '<pre class="output" id="raw-reply">Count the &lt;i&gt;trains&lt;/i&gt; twice.</pre>' in done["explanation"]
    assert follow_up["status"] == "complete" and "explanation" not in follow_up
    first, last = server.bodies()
    assert [m["role"] for m in first["messages"]] == ["user"]  # nothing cited: SALAM's request alone
    assert [m["role"] for m in last["messages"]] == ["system", "user", "assistant", "user"]
    assert last["messages"][0]["content"].startswith(SYSTEM_PROMPT)  # the follow-up is an ordinary chat turn
