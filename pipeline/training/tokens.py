"""What the model sees in training: chat examples rendered, tokenized and masked so the loss falls on the reply only.

Every function takes a tokenizer object (a transformers tokenizer, or anything with ``__call__``,
``chat_template``, ``apply_chat_template``, ``eos_token_id`` and ``decode``) and imports nothing heavy,
so the web side's preview and the GPU worker's runner build examples the same way.

Rules, each chosen once here:
- The prompt is every message but the last, rendered by the chat template with the assistant's turn
  opened; the target is what the full conversation adds after that prompt (the last message and the
  template's end-of-turn marker). Without a chat template, the layout is the one Errata's CPU model
  server prompts with ("role: content" lines, then "assistant:"), so a model trained here is prompted
  at serve time exactly as it was taught.
- Prompt and target are tokenized separately and joined: at generation time the model continues the
  prompt's tokens, so that is the split it learns from.
- The target ends with EOS (added unless the template's end-of-turn already is EOS), so the model
  learns to stop.
- Too long: the sequence keeps its start and is cut from the right (the question is kept whole where
  possible, the reply loses its end). Cut examples are counted; one left with no target token at all is
  dropped, since it would teach nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

IGNORE_INDEX = -100  # labels with this value carry no loss (PyTorch's cross_entropy default)
HISTOGRAM_BINS = 8


@dataclass(frozen=True)
class TokenizedExample:
    """One training sequence: ``labels`` is ``input_ids`` with every non-target token set to IGNORE_INDEX."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool
    original_length: int = 0  # tokens before truncation

    @property
    def target_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def render_example(messages: Sequence[Mapping], tokenizer) -> tuple[str, str]:
    """(prompt_text, target_text) for a conversation whose last message is the assistant's reply to learn."""
    messages = [{"role": message["role"], "content": message["content"]} for message in messages]
    if len(messages) < 2 or messages[-1]["role"] != "assistant":
        raise ValueError("an example needs at least one message before the assistant's reply, which comes last")
    if not getattr(tokenizer, "chat_template", None):
        return plain_prompt(messages[:-1]), messages[-1]["content"]
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    if not full.startswith(prompt):
        # A template that renders earlier turns differently once a reply follows: fall back on the reply alone.
        return prompt, messages[-1]["content"]
    return prompt, _end_at_eos(full[len(prompt):], getattr(tokenizer, "eos_token", None))


def plain_prompt(messages: Sequence[Mapping]) -> str:
    """The layout without a chat template (gpu_worker/loading.py's chat_prompt): "role: content" lines, then "assistant:"."""
    return "\n".join([f"{message['role']}: {message['content']}" for message in messages] + ["assistant:"])


def _end_at_eos(target: str, eos_token: str | None) -> str:
    """Drop what a template writes after the reply's closing EOS (a newline between turns): generation stops there."""
    if eos_token and eos_token in target:
        end = target.rindex(eos_token) + len(eos_token)
        if not target[end:].strip():
            return target[:end]
    return target


def tokenize_example(messages: Sequence[Mapping], tokenizer, max_length: int) -> TokenizedExample:
    """Token ids and labels for one conversation, loss on the reply's tokens (and its EOS) only."""
    prompt_text, target_text = render_example(messages, tokenizer)
    prompt_ids = _ids(tokenizer, prompt_text)
    if not getattr(tokenizer, "chat_template", None) and getattr(tokenizer, "bos_token_id", None) is not None:
        prompt_ids = [tokenizer.bos_token_id] + prompt_ids
    target_ids = _ids(tokenizer, target_text)
    eos = tokenizer.eos_token_id
    if eos is not None and (not target_ids or target_ids[-1] != eos):
        target_ids.append(eos)
    input_ids = prompt_ids + target_ids
    labels = [IGNORE_INDEX] * len(prompt_ids) + target_ids
    original_length = len(input_ids)
    truncated = original_length > max_length
    return TokenizedExample(input_ids[:max_length], labels[:max_length], truncated, original_length)


def _ids(tokenizer, text: str) -> list[int]:
    # Special tokens come from the template (or are added above), never twice.
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def tokenize_examples(examples: Iterable, tokenizer, max_length: int) -> tuple[list[tuple[dict, TokenizedExample]], dict]:
    """(row, sequence) for each example that keeps a target token, and counts: examples, truncated, dropped.

    ``examples`` are ``{"messages", "part"}`` rows (or objects with ``to_json()`` giving them).
    """
    kept, truncated, dropped = [], 0, 0
    for example in examples:
        row = _as_row(example)
        tokenized = tokenize_example(row["messages"], tokenizer, max_length)
        truncated += tokenized.truncated
        if tokenized.target_tokens == 0:
            dropped += 1
            continue
        kept.append((row, tokenized))
    return kept, {"examples": len(kept) + dropped, "truncated": truncated, "dropped": dropped}


def _as_row(example) -> Mapping:
    """A JSON row, from a row or from a record of pipeline.training.data (TrainingExample, PreferencePair)."""
    return example.to_json() if hasattr(example, "to_json") else example


def preview(examples: Sequence, tokenizer, max_length: int, show: int = 3) -> dict:
    """What a training run would see: counts per part, token lengths, truncation, and ``show`` examples in full.

    ``examples`` are SFT rows (``{"messages", "part"}``) or DPO rows (``{"prompt", "chosen", "rejected"}``);
    a DPO row is measured as prompt + chosen. Lengths are counted before truncation, so the histogram's
    last bin holds the examples that will be cut.
    """
    parts: Counter[str] = Counter()
    lengths, shown = [], []
    truncated = dropped = 0
    longest = {"index": None, "tokens": 0}
    for index, example in enumerate(map(_as_row, examples)):
        parts[example.get("part") or "main"] += 1
        tokenized, rendered = _preview_one(example, tokenizer, max_length)
        lengths.append(tokenized.original_length)
        truncated += tokenized.truncated
        dropped += tokenized.target_tokens == 0
        if tokenized.original_length > longest["tokens"]:
            longest = {"index": index, "tokens": tokenized.original_length}
        if len(shown) < show:
            shown.append({"index": index, "part": example.get("part") or "main", **rendered,
                          "tokens": len(tokenized.input_ids), "target_tokens": tokenized.target_tokens,
                          "truncated": tokenized.truncated})
    return {
        "examples": len(lengths),
        "parts": dict(sorted(parts.items())),
        "max_length": max_length,
        "truncated": truncated,
        "dropped": dropped,
        "longest": longest,
        "mean_tokens": round(sum(lengths) / len(lengths), 1) if lengths else 0.0,
        "histogram": length_histogram(lengths, max_length),
        "shown": shown,
    }


def _preview_one(example: Mapping, tokenizer, max_length: int) -> tuple[TokenizedExample, dict]:
    if "messages" in example:
        prompt, target = render_example(example["messages"], tokenizer)
        return tokenize_example(example["messages"], tokenizer, max_length), {"prompt": prompt, "target": target}
    conversation = [{"role": "user", "content": example["prompt"]}, {"role": "assistant", "content": example["chosen"]}]
    prompt, target = render_example(conversation, tokenizer)
    return (tokenize_example(conversation, tokenizer, max_length),
            {"prompt": prompt, "target": target, "rejected": example["rejected"]})


def length_histogram(lengths: Sequence[int], max_length: int, bins: int = HISTOGRAM_BINS) -> list[dict]:
    """``bins`` equal bins over [0, max_length], then one bin for everything longer (what gets truncated).

    Each bin is ``{"low", "high", "count"}`` with ``low < length <= high``; the last one's high is None.
    """
    width = max(1, -(-max_length // bins))  # ceiling division: the last equal bin reaches max_length
    edges = [min(i * width, max_length) for i in range(bins + 1)]
    edges = sorted(set(edges))
    histogram = [{"low": low, "high": high, "count": 0} for low, high in zip(edges, edges[1:])]
    histogram.append({"low": max_length, "high": None, "count": 0})
    for length in lengths:
        if length > max_length:
            histogram[-1]["count"] += 1
            continue
        for bin_ in histogram[:-1]:
            if length <= bin_["high"]:
                bin_["count"] += 1
                break
    return histogram
