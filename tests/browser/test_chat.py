"""In a real browser: a learner signs in, starts a chat, watches an answer stream in piece by piece, stops a long
one, reloads and finds the conversation; a model answer carrying <script> and <img onerror> is shown as text and
never runs. The assistant is a fake OpenAI-compatible server that streams on a fixed schedule."""

from __future__ import annotations

import pytest

from tests.conftest import PASSWORD, wait_for
from tests.fakeopenai import FakeOpenAI
from webapp.chat.models import ChatMessage, ChatSession
from webapp.endpoints.models import ModelEndpoint

pytestmark = [pytest.mark.browser, pytest.mark.slow]
ANSWER = "First add the units: 5 + 7 = 12, write 2 and carry 1. Then the tens: 1 + 1 + 1 = 3. So 15 + 17 = 32."
LONG = "The carry is where most sums go wrong. " * 40
# Each tag arrives whole in one piece, as a model's tokens may bring it.
PAYLOAD = ("Careful: ", '<script>window.pwned = "script"</script>', " and ", '<img src=x onerror="window.pwned = \'img\'">',
           " and **bold**.")


@pytest.fixture(scope="module")
def assistant_server():
    with FakeOpenAI(stream_chunks=10, stream_delay_s=0.1) as server:
        yield server


@pytest.fixture
def assistant(assistant_server, transactional_db) -> ModelEndpoint:
    return ModelEndpoint.objects.create(name="Study buddy", base_url=assistant_server.base_url, model_name="fake-model",
                                        as_student=False, as_assistant=True)


@pytest.fixture
def page(browser_page):
    """A page that ignores the chat pages' Content-Security-Policy: Playwright's waits need eval, and the markup
    test must show that the sanitiser alone keeps model code from running (the CSP is a second, separate guard)."""
    page = browser_page.context.browser.new_page(bypass_csp=True)
    page.set_default_timeout(30_000)
    yield page
    page.close()


def open_new_chat(page, base: str, user) -> None:
    """Sign in on the way to the chat list, start a chat with the assistant, wait until the socket is open."""
    page.goto(f"{base}/chat/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/chat/")
    page.click("button:has-text('Start chat')")
    page.wait_for_url(f"{base}/chat/*/")
    wait_until_connected(page)


def wait_until_connected(page) -> None:
    page.wait_for_function("!document.querySelector('#send').disabled")


def send(page, text: str) -> None:
    page.fill("#chat-input", text)
    page.keyboard.press("Enter")


def last_answer(page) -> str:
    return "document.querySelector('#messages article.assistant:last-of-type')"


def test_an_answer_streams_in_pieces_a_long_one_is_stopped_and_the_chat_is_kept(
        live_errata, page, assistant_server, assistant, annotator):
    assistant_server.configure(reply_with=ANSWER, stream_chunks=10, stream_delay_s=0.1)
    open_new_chat(page, live_errata, annotator)
    # Count the text changes inside the answer as they happen.
    page.evaluate("""() => {
        window.textChanges = 0;
        new MutationObserver(records => { window.textChanges += records.filter(r => r.type === 'characterData').length; })
          .observe(document.querySelector('#messages'), {subtree: true, characterData: true});
    }""")
    send(page, "How do I add 15 and 17?")
    page.wait_for_selector("#messages article.assistant[data-status=complete]")
    assert page.evaluate("window.textChanges") >= 5  # arrived in several pieces, not at once
    assert page.inner_text(f"#messages article.assistant >> .body") == ANSWER
    assert page.inner_text("#messages article.user .body") == "How do I add 15 and 17?"

    assistant_server.configure(reply_with=LONG, stream_chunks=200, stream_delay_s=0.05)  # ten seconds of answer
    send(page, "Tell me everything about carrying.")
    page.wait_for_function(f"{last_answer(page)}?.dataset.status === 'streaming' && {last_answer(page)}.textContent.length > 40")
    page.click("#stop")
    page.wait_for_selector("#messages article.assistant[data-status=stopped]")
    shown = page.evaluate(f"{last_answer(page)}.querySelector('.body').textContent").strip()
    assert 0 < len(shown) < len(LONG) / 2 and LONG.startswith(shown)
    assert page.inner_text("#messages article.assistant[data-status=stopped] .msg-status") == "Stopped"
    wait_for(lambda: assistant_server.stats()["outcomes"].get("stream_cut"), timeout=5, what="the upstream stream to close")

    chat = ChatSession.objects.get(owner=annotator)
    page.reload()
    wait_until_connected(page)
    assert page.locator("#messages article").count() == 4
    assert page.inner_text("#messages article.assistant[data-status=stopped] .msg-status") == "Stopped"
    page.goto(f"{live_errata}/chat/")
    page.click(f"#chats a:has-text('How do I add 15 and 17?')")
    page.wait_for_url(f"{live_errata}{chat.get_absolute_url()}")
    saved = list(ChatMessage.objects.filter(session=chat).values_list("role", "status"))
    assert saved == [("user", "complete"), ("assistant", "complete"), ("user", "complete"), ("assistant", "stopped")]


def test_markup_in_a_model_answer_is_shown_as_text_and_never_runs(live_errata, page, assistant_server, assistant,
                                                                  annotator):
    assistant_server.configure(stream_script=PAYLOAD, stream_delay_s=0.1)
    open_new_chat(page, live_errata, annotator)
    # Any element that appears inside an answer while it streams (the pieces must only ever be text).
    page.evaluate("""() => {
        window.elementsWhileStreaming = [];
        new MutationObserver(records => records.forEach(r => r.addedNodes.forEach(node => {
            const article = r.target.closest && r.target.closest('article');
            if (node.nodeType === 1 && article && article.dataset.status === 'streaming') window.elementsWhileStreaming.push(node.nodeName);
        }))).observe(document.querySelector('#messages'), {subtree: true, childList: true});
    }""")
    send(page, "Show me some markup")
    page.wait_for_selector("#messages article.assistant[data-status=complete]")
    assert page.evaluate("window.elementsWhileStreaming") == []
    page.wait_for_timeout(300)  # an onerror would have fired by now
    for _ in range(2):  # as rendered on "done", then as saved and rendered again after a reload
        assert page.evaluate("window.pwned") is None
        body = page.locator("#messages article.assistant .body")
        assert '<script>window.pwned = "script"</script>' in body.inner_text()
        assert "<img src=x" in body.inner_text()
        assert body.locator("script, img").count() == 0 and body.locator("strong").inner_text() == "bold"
        page.reload()
        wait_until_connected(page)
        page.wait_for_timeout(300)
