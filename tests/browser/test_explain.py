"""In a real browser: a learner signs in and asks to explain a mistake; the page opens the new conversation at once,
the answer streams in there, and the reason/guideline panel appears when it is done, without a reload (and is still
there after one). The assistant is the fake OpenAI-compatible server of test_chat."""

from __future__ import annotations

import json

import pytest

from tests.browser.test_chat import assistant, assistant_server, page, wait_until_connected  # noqa: F401 (fixtures)
from tests.conftest import PASSWORD
from webapp.chat.models import ChatSession

pytestmark = [pytest.mark.browser, pytest.mark.slow]
REPLY = json.dumps({"reason": "You counted the 4 apples twice.", "guideline": "Write each number down once, then add."})


def test_the_explanation_streams_into_its_conversation_and_the_panel_appears_when_done(
        live_errata, page, assistant_server, assistant, annotator):
    assistant_server.configure(reply_with=REPLY, stream_chunks=10, stream_delay_s=0.1)  # a second of answer
    page.goto(f"{live_errata}/chat/explain/")
    page.fill("input[name=username]", annotator.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live_errata}/chat/explain/")
    page.fill("textarea[name=question]", "Ann has 3 apples and buys 4 more. How many apples?")
    page.fill("textarea[name=answer]", "11")
    page.fill("input[name=gold]", "7")
    page.click("#explain-form button")
    page.wait_for_url(f"{live_errata}/chat/*/")  # at once: the model is asked from this page
    assert page.locator("#messages article.user").count() == 1 and page.locator("#explanation").count() == 0
    page.wait_for_selector("#messages article.assistant[data-status=streaming]")
    page.wait_for_selector("#explanation-panel #reason")  # put in place by the "done" frame
    assert page.locator("#messages article.assistant").get_attribute("data-status") == "complete"
    assert page.inner_text("#reason") == "You counted the 4 apples twice."
    assert page.inner_text("#guideline") == "Write each number down once, then add."
    chat = ChatSession.objects.get(owner=annotator)
    assert list(chat.messages.values_list("role", flat=True)) == ["user", "assistant"]
    assert chat.messages.last().content == REPLY
    assert assistant_server.stats()["received"] == {"chat_stream": 1}

    page.reload()
    wait_until_connected(page)
    page.wait_for_timeout(300)  # a request asked on opening would have reached the server by now
    assert page.inner_text("#reason") == "You counted the 4 apples twice."
    assert page.locator("#messages article").count() == 2
    assert assistant_server.stats()["received"] == {"chat_stream": 1}  # answered: nothing more is asked
