"""Errata's CPU model server over real HTTP, driven by the official openai client, on a tiny model."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from tests.conftest import wait_for
from tests.gpu_worker.conftest import TINY

HELLO = [{"role": "user", "content": "Hello there!"}]
FIXED_LENGTH = {"ignore_eos": True}  # vLLM's extension: the tiny model may pick EOS early by chance


def raw(url: str, body: bytes | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a GET, or of a POST when ``body`` is given."""
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def chat(client, model=TINY, messages=HELLO, **kwargs):
    kwargs.setdefault("temperature", 0)
    return client.chat.completions.create(model=model, messages=messages, **kwargs)


def test_health_says_ok_and_names_the_models(tiny_server):
    assert raw(f"{tiny_server}/health") == (200, {"status": "ok", "models": ["tiny", "tiny-a", "tiny-b"]})


def test_models_lists_the_base_and_its_adapters_with_their_parent_and_root(openai_client, tiny_specs):
    models = {model.id: model for model in openai_client.models.list()}
    assert set(models) == {"tiny", "tiny-a", "tiny-b"}
    assert models["tiny"].parent is None
    assert models["tiny-a"].parent == models["tiny-b"].parent == "tiny"
    # root, as vLLM gives it: where the weights come from (clients tell an adapter's folder by it)
    assert models["tiny"].root == tiny_specs[0].path and models["tiny-a"].root == tiny_specs[0].adapters["tiny-a"]
    assert openai_client.models.retrieve("tiny-a").id == "tiny-a"


def test_chat_answers_with_token_usage(openai_client, tiny_engine):
    response = chat(openai_client, max_tokens=12, extra_body=FIXED_LENGTH)
    [choice] = response.choices
    assert choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content
    assert choice.finish_reason == "length"
    prompt = tiny_engine.chat_prompt(TINY, HELLO)
    assert response.usage.prompt_tokens == len(prompt.encode())  # the tiny tokenizer has a token per byte
    assert response.usage.completion_tokens == 12
    assert response.model == TINY


def test_greedy_chat_is_deterministic_and_accepts_text_parts(openai_client):
    parts = [{"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there!"}]}]
    first = chat(openai_client, max_completion_tokens=16).choices[0].message.content
    assert chat(openai_client, messages=parts, max_completion_tokens=16).choices[0].message.content == first


def test_completions_answer_a_prompt_and_a_list_of_prompts(openai_client):
    one = openai_client.completions.create(model=TINY, prompt="Once upon a time", max_tokens=8, temperature=0,
                                           extra_body=FIXED_LENGTH)
    assert one.object == "text_completion"
    assert one.usage.prompt_tokens == len("Once upon a time") and one.usage.completion_tokens == 8
    many = openai_client.completions.create(model=TINY, prompt=["Once upon a time", "2 + 2 ="], n=2, max_tokens=8,
                                            temperature=0, extra_body=FIXED_LENGTH)
    assert [choice.index for choice in many.choices] == [0, 1, 2, 3]
    texts = [choice.text for choice in many.choices]
    assert texts[0] == texts[1] == one.choices[0].text  # greedy: both samples alike, same as asked alone
    assert texts[2] == texts[3] != texts[0]
    assert many.usage.prompt_tokens == len("Once upon a time") + len("2 + 2 =")
    assert many.usage.completion_tokens == 4 * 8


def test_streaming_arrives_token_by_token_and_matches_the_whole_answer(openai_client):
    stream = chat(openai_client, max_tokens=20, stream=True, stream_options={"include_usage": True},
                  extra_body=FIXED_LENGTH)
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 3
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 20
    whole = chat(openai_client, max_tokens=20, extra_body=FIXED_LENGTH).choices[0].message.content
    assert "".join(pieces) == whole


def test_completions_stream_too(openai_client):
    stream = openai_client.completions.create(model=TINY, prompt="Once upon a time", max_tokens=10, temperature=0,
                                              stream=True, extra_body=FIXED_LENGTH)
    chunks = list(stream)
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].text]) > 3
    whole = openai_client.completions.create(model=TINY, prompt="Once upon a time", max_tokens=10, temperature=0,
                                             extra_body=FIXED_LENGTH)
    assert text == whole.choices[0].text
    assert chunks[-1].choices[0].finish_reason == "length"


def test_n_samples_differ_and_a_seed_reproduces_them(openai_client):
    def samples(seed):
        response = chat(openai_client, n=3, temperature=1.0, top_p=0.9, seed=seed, max_tokens=16,
                        extra_body=FIXED_LENGTH)
        return [choice.message.content for choice in response.choices]

    first = samples(7)
    assert len(first) == 3 and len(set(first)) == 3
    assert samples(7) == first
    assert samples(8) != first


def test_streamed_samples_equal_unstreamed_ones_with_the_same_seed(openai_client):
    settings = dict(n=2, temperature=1.0, seed=11, max_tokens=12, extra_body=FIXED_LENGTH)
    whole = [choice.message.content for choice in chat(openai_client, **settings).choices]
    streamed = ["", ""]
    for chunk in chat(openai_client, stream=True, **settings):
        for choice in chunk.choices:
            streamed[choice.index] += choice.delta.content or ""
    assert streamed == whole


def test_a_stop_string_cuts_the_text_and_finishes_with_stop(openai_client):
    full = chat(openai_client, max_tokens=24, extra_body=FIXED_LENGTH).choices[0].message.content
    stop = full[6:9]
    expected = full[: full.index(stop)]
    response = chat(openai_client, max_tokens=24, stop=[stop, "never appears"], extra_body=FIXED_LENGTH)
    assert response.choices[0].message.content == expected
    assert response.choices[0].finish_reason == "stop"
    assert response.usage.completion_tokens < 24
    streamed = "".join(c.choices[0].delta.content or "" for c in chat(openai_client, max_tokens=24, stop=stop,
                                                                       stream=True, extra_body=FIXED_LENGTH))
    assert streamed == expected  # the start of the stop string was held back, never sent


def test_max_tokens_finishes_with_length_and_counts_exactly(openai_client):
    response = chat(openai_client, max_tokens=5, extra_body=FIXED_LENGTH)
    assert response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 5
    assert len(response.choices[0].message.content) <= 5  # a byte per token at most


def test_the_model_name_selects_an_adapter(openai_client):
    def answer(model):
        return chat(openai_client, model=model, max_tokens=16, extra_body=FIXED_LENGTH).choices[0].message.content

    answers = {model: answer(model) for model in ("tiny", "tiny-a", "tiny-b")}
    assert len(set(answers.values())) == 3  # each adapter changes the answer, and differently
    assert answer("tiny-a") == answers["tiny-a"]


def test_an_unknown_model_is_404_with_an_openai_error(openai_client, tiny_server):
    with pytest.raises(openai.NotFoundError):
        chat(openai_client, model="no-such-model")
    status, body = raw(f"{tiny_server}/v1/chat/completions", json.dumps({"model": "gpt-9", "messages": HELLO}).encode())
    assert status == 404
    assert body["error"]["code"] == "model_not_found" and "gpt-9" in body["error"]["message"]
    assert raw(f"{tiny_server}/v1/nowhere")[0] == 404


@pytest.mark.parametrize(
    "body, mentions",
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        ({"model": TINY}, "messages"),
        ({"model": TINY, "messages": "hi"}, "messages"),
        ({"model": TINY, "messages": [{"content": "no role"}]}, "role"),
        ({"messages": HELLO}, "model"),
        ({"model": TINY, "messages": HELLO, "n": 0}, "n must be"),
        ({"model": TINY, "messages": HELLO, "max_tokens": 10**6}, "max_tokens"),
        ({"model": TINY, "messages": HELLO, "max_tokens": "ten"}, "max_tokens"),
        ({"model": TINY, "messages": HELLO, "temperature": "hot"}, "temperature"),
        ({"model": TINY, "messages": HELLO, "temperature": 5}, "temperature"),
        ({"model": TINY, "messages": HELLO, "stop": [1, 2]}, "stop"),
        ({"model": TINY, "messages": HELLO, "stream": "yes"}, "stream"),
        ({"model": TINY, "messages": HELLO, "logprobs": True}, "logprobs"),
        ({"model": TINY, "messages": HELLO, "max_tokens": 1000, "stream": True}, "maximum context length"),
    ],
)
def test_a_bad_request_body_is_400_with_a_clear_message(tiny_server, body, mentions):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    status, answer = raw(f"{tiny_server}/v1/chat/completions", data)
    assert status == 400
    assert mentions in answer["error"]["message"]


def test_a_bad_completions_body_is_400(tiny_server):
    status, answer = raw(f"{tiny_server}/v1/completions", json.dumps({"model": TINY, "prompt": [1, 2, 3]}).encode())
    assert status == 400 and "prompt" in answer["error"]["message"]


def test_concurrent_requests_share_forward_passes(openai_client, tiny_engine):
    """Four requests of 32 tokens at once take far fewer decoding steps than four in a row would (counted,
    not timed: a busy machine slows both)."""
    before = tiny_engine.stats()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: chat(openai_client, max_tokens=32, extra_body=FIXED_LENGTH), range(4)))
    after = tiny_engine.stats()
    assert after["requests"] - before["requests"] == 4
    assert after["max_rows_in_step"] >= 2
    assert after["steps"] - before["steps"] < 3 * 32, "four requests of 32 tokens each should mostly share passes"


def test_a_long_request_does_not_hold_up_a_short_one(openai_client, tiny_engine):
    finished = {}

    def ask(name, tokens):
        chat(openai_client, max_tokens=tokens, extra_body=FIXED_LENGTH)
        finished[name] = time.perf_counter()

    long = threading.Thread(target=ask, args=("long", 900))
    long.start()
    wait_for(lambda: tiny_engine.stats()["active_rows"] >= 1, timeout=10, what="the long request to start")
    ask("short", 8)
    still_decoding = tiny_engine.stats()["active_rows"]  # counted, not timed: a busy machine slows both alike
    long.join()
    assert finished["short"] < finished["long"]
    assert still_decoding >= 1, "the short request waited for the long one to finish"


def test_a_client_that_disconnects_mid_stream_stops_its_generation(openai_client, tiny_engine):
    before = tiny_engine.stats()["rows_cancelled"]
    stream = chat(openai_client, max_tokens=900, stream=True, extra_body=FIXED_LENGTH)
    for _, _chunk in zip(range(4), stream):
        pass
    stream.close()
    wait_for(lambda: tiny_engine.stats()["rows_cancelled"] > before, timeout=5, what="the row to be cancelled")
    wait_for(lambda: tiny_engine.stats()["active_rows"] == 0, timeout=5, what="no rows decoding")


def test_a_name_prefix_is_shown_and_accepted(tiny_engine):
    from gpu_worker.server import create_app
    from tests.gpu_worker.tiny import serve_in_thread

    with serve_in_thread(create_app(tiny_engine, served_name_prefix="errata/")) as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="not-needed", max_retries=0)
        assert {model.id: model.parent for model in client.models.list()} == {
            "errata/tiny": None, "errata/tiny-a": "errata/tiny", "errata/tiny-b": "errata/tiny"}
        response = chat(client, model="errata/tiny-a", max_tokens=3)
        assert response.model == "errata/tiny-a" and response.usage.completion_tokens <= 3


def test_an_unexpected_failure_is_a_500_with_an_openai_error_not_a_traceback(tiny_engine, monkeypatch):
    from gpu_worker.server import create_app
    from tests.gpu_worker.tiny import serve_in_thread

    def broken(model, messages, **options):
        raise RuntimeError("the template exploded")

    monkeypatch.setattr(tiny_engine, "chat_prompt", broken)
    with serve_in_thread(create_app(tiny_engine)) as url:
        status, body = raw(f"{url}/v1/chat/completions", json.dumps({"model": TINY, "messages": HELLO}).encode())
    assert status == 500
    assert body["error"]["type"] == "server_error" and "the template exploded" in body["error"]["message"]


def test_a_client_that_hangs_up_before_its_answer_stops_its_generation(tiny_server, tiny_engine):
    import socket
    from urllib.parse import urlsplit

    before = tiny_engine.stats()["rows_cancelled"]
    body = json.dumps({"model": TINY, "messages": HELLO, "max_tokens": 900, "ignore_eos": True}).encode()
    address = urlsplit(tiny_server)
    with socket.create_connection((address.hostname, address.port)) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        wait_for(lambda: tiny_engine.stats()["active_rows"] >= 1, timeout=5, what="generation to start")
    wait_for(lambda: tiny_engine.stats()["rows_cancelled"] > before, timeout=5, what="the row to be cancelled")


def test_continue_final_message_goes_on_from_the_assistants_prefix(openai_client, tiny_engine):
    # GSI's state reset: the student continues a gold solution's first lines instead of starting afresh.
    messages = [{"role": "user", "content": "What is 2 + 3?"}, {"role": "assistant", "content": "First, 2 + 3"}]
    prompt = tiny_engine.chat_prompt(TINY, messages, continue_final_message=True)
    assert prompt.rstrip().endswith("First, 2 + 3")  # no new assistant turn opened after the prefix
    continued = openai_client.chat.completions.create(
        model=TINY, messages=messages, max_tokens=10, temperature=0,
        extra_body={"continue_final_message": True, "add_generation_prompt": False, **FIXED_LENGTH})
    assert continued.usage.prompt_tokens == len(prompt.encode())
    completed = openai_client.completions.create(model=TINY, prompt=prompt, max_tokens=10, temperature=0,
                                                 extra_body=FIXED_LENGTH)
    assert continued.choices[0].message.content == completed.choices[0].text


@pytest.mark.parametrize("extra,message", [
    ({"continue_final_message": True}, "needs add_generation_prompt false"),
    ({"continue_final_message": "yes", "add_generation_prompt": False}, "must be true or false"),
])
def test_continue_final_message_is_refused_when_it_cannot_apply(openai_client, extra, message):
    with pytest.raises(openai.BadRequestError) as error:
        openai_client.chat.completions.create(model=TINY, messages=HELLO, max_tokens=4, extra_body=extra)
    assert message in str(error.value)


def test_continuing_needs_the_last_message_to_be_the_assistants(openai_client):
    with pytest.raises(openai.BadRequestError) as error:
        openai_client.chat.completions.create(model=TINY, messages=HELLO, max_tokens=4,
                                              extra_body={"continue_final_message": True, "add_generation_prompt": False})
    assert "last message to be the assistant's" in str(error.value)
