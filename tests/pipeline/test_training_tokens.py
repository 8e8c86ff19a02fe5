"""What the model sees in training: rendering, loss masking, EOS, truncation, and the preview page's summary."""

from __future__ import annotations

import pytest
from transformers import ByT5Tokenizer

from pipeline.training.tokens import (
    IGNORE_INDEX,
    length_histogram,
    plain_prompt,
    preview,
    render_example,
    tokenize_example,
    tokenize_examples,
)

# A template whose turns end with a newline (like tests/gpu_worker/tiny.py's), and one whose turns end with EOS.
NEWLINE_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
EOS_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|>{{ message['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"}]


def tokenizer(template: str | None = None) -> ByT5Tokenizer:
    """Bytes as tokens (id = byte + 3; pad 0, eos 1): every count below is a count of characters."""
    byt5 = ByT5Tokenizer()
    byt5.chat_template = template
    return byt5


def text_of(tokens: ByT5Tokenizer, ids: list[int]) -> str:
    return tokens.decode([i for i in ids if i != IGNORE_INDEX])


# --- rendering ----------------------------------------------------------------------------------


def test_without_a_chat_template_the_layout_is_the_cpu_servers():
    prompt, target = render_example(CHAT, tokenizer())
    assert prompt == "system: Be brief.\nuser: 2+2?\nassistant:"
    assert prompt == plain_prompt(CHAT[:-1])
    assert target == "4"


def test_with_a_chat_template_the_prompt_opens_the_assistants_turn_and_the_target_is_the_rest():
    prompt, target = render_example(CHAT, tokenizer(NEWLINE_TEMPLATE))
    assert prompt == "<|system|>Be brief.\n<|user|>2+2?\n<|assistant|>"
    assert target == "4\n"  # the template's end of turn is part of what the model learns to write


def test_what_a_template_writes_after_a_closing_eos_is_not_learned():
    prompt, target = render_example(CHAT, tokenizer(EOS_TEMPLATE))
    assert prompt.endswith("<|user|>2+2?</s>\n<|assistant|>")
    assert target == "4</s>"  # the newline between turns comes after the stop: generation never reaches it


@pytest.mark.parametrize("messages", [CHAT[:-1], CHAT[-1:], []])
def test_a_conversation_must_end_with_the_assistants_reply_after_something(messages):
    with pytest.raises(ValueError, match="assistant"):
        render_example(messages, tokenizer())


# --- masking, EOS, truncation -------------------------------------------------------------------


def test_the_loss_falls_on_the_reply_and_its_eos_only():
    tokens = tokenizer()
    example = tokenize_example(CHAT, tokens, max_length=100)
    prompt = "system: Be brief.\nuser: 2+2?\nassistant:"
    assert example.input_ids == [b + 3 for b in prompt.encode()] + [ord("4") + 3, tokens.eos_token_id]
    assert example.labels == [IGNORE_INDEX] * len(prompt) + [ord("4") + 3, tokens.eos_token_id]
    assert example.target_tokens == 2 and not example.truncated
    assert example.original_length == len(prompt) + 2


def test_with_a_template_the_masked_part_is_the_rendered_prompt():
    tokens = tokenizer(NEWLINE_TEMPLATE)
    example = tokenize_example(CHAT, tokens, max_length=100)
    prompt, _ = render_example(CHAT, tokens)
    assert example.labels[:len(prompt)] == [IGNORE_INDEX] * len(prompt)
    assert text_of(tokens, example.labels) == "4\n</s>"
    assert tokens.decode(example.input_ids) == prompt + "4\n</s>"


def test_an_eos_the_template_already_closes_with_is_not_added_twice():
    tokens = tokenizer(EOS_TEMPLATE)
    example = tokenize_example(CHAT, tokens, max_length=100)
    assert text_of(tokens, example.labels) == "4</s>"
    assert example.input_ids.count(tokens.eos_token_id) == 3  # two closed turns in the prompt, one in the reply


def test_a_long_example_keeps_its_start_and_loses_the_end_of_its_reply():
    tokens = tokenizer()
    messages = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "a long answer"}]
    prompt_length = len("user: Q?\nassistant:")
    example = tokenize_example(messages, tokens, max_length=prompt_length + 4)
    assert example.truncated and example.original_length == prompt_length + len("a long answer") + 1
    assert len(example.input_ids) == len(example.labels) == prompt_length + 4
    assert text_of(tokens, example.labels) == "a lo"  # no EOS: the reply was cut


def test_an_example_whose_reply_is_cut_away_entirely_is_dropped_and_counted():
    tokens = tokenizer()
    short = {"messages": [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}], "part": "main"}
    long = {"messages": [{"role": "user", "content": "Q" * 50}, {"role": "assistant", "content": "A"}], "part": "cot"}
    kept, counts = tokenize_examples([short, long, short], tokens, max_length=30)
    assert counts == {"examples": 3, "truncated": 1, "dropped": 1}
    assert [row["part"] for row, _ in kept] == ["main", "main"]


# --- preview ------------------------------------------------------------------------------------


def qa(question: str, answer: str, part: str = "main") -> dict:
    return {"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}],
            "part": part, "source": {}}


def test_the_preview_counts_parts_lengths_and_truncation_and_shows_examples_in_full():
    examples = [qa("Q1?", "one", "feedback"), qa("Q2?", "two", "rationale"), qa("Q3?", "x" * 80, "rationale"),
                qa("Q4?", "four", "rationale")]
    summary = preview(examples, tokenizer(NEWLINE_TEMPLATE), max_length=64, show=2)
    assert summary["examples"] == 4 and summary["max_length"] == 64
    assert summary["parts"] == {"feedback": 1, "rationale": 3}
    assert summary["truncated"] == 1 and summary["dropped"] == 0
    long_length = len("<|user|>Q3?\n<|assistant|>") + 80 + 2  # reply, "\n", EOS
    assert summary["longest"] == {"index": 2, "tokens": long_length}
    assert sum(bin_["count"] for bin_ in summary["histogram"]) == 4
    assert summary["histogram"][-1] == {"low": 64, "high": None, "count": 1}
    first = summary["shown"][0]
    assert len(summary["shown"]) == 2
    assert (first["prompt"], first["target"], first["part"]) == ("<|user|>Q1?\n<|assistant|>", "one\n", "feedback")
    assert first["target_tokens"] == len("one\n") + 1 and not first["truncated"]


def test_the_preview_reads_preference_pairs_as_prompt_and_chosen():
    pair = {"prompt": "Q?", "chosen": "right", "rejected": "wrong", "source": {}}
    summary = preview([pair], tokenizer(), max_length=64)
    assert summary["parts"] == {"main": 1}
    assert summary["shown"] == [{"index": 0, "part": "main", "prompt": "user: Q?\nassistant:", "target": "right",
                                 "rejected": "wrong", "tokens": len("user: Q?\nassistant:right") + 1,
                                 "target_tokens": 6, "truncated": False}]


def test_the_preview_takes_the_records_of_pipeline_training_data_too():
    from pipeline.training.data import TrainingExample

    record = TrainingExample(tuple(qa("Q?", "A")["messages"]), part="cot")
    assert preview([record], tokenizer(), max_length=32)["parts"] == {"cot": 1}


def test_an_empty_preview_is_all_zeros():
    summary = preview([], tokenizer(), max_length=32)
    assert (summary["examples"], summary["mean_tokens"], summary["shown"]) == (0, 0.0, [])
    assert summary["longest"] == {"index": None, "tokens": 0}


def test_histogram_bins_are_equal_up_to_max_length_then_one_for_the_overflow():
    histogram = length_histogram([1, 8, 9, 16, 17, 100], max_length=32, bins=4)
    assert histogram == [
        {"low": 0, "high": 8, "count": 2},  # 1 and 8: a bin holds low < length <= high
        {"low": 8, "high": 16, "count": 2},
        {"low": 16, "high": 24, "count": 1},
        {"low": 24, "high": 32, "count": 0},
        {"low": 32, "high": None, "count": 1},
    ]
