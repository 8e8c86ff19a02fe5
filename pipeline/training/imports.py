"""Reading training data that was made elsewhere: chat JSONL, LEMA {prompt, completion}, SALAM finetune data, DPO pairs.

Every line (or instance) is checked before anything is returned: a file with one bad row is refused whole,
the message naming the row and what is wrong with it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pipeline.training.data import PreferencePair, TrainingExample

ROLES = ("system", "user", "assistant")
KINDS = {  # the keys that identify a row's format
    "chat": ("messages",),
    "dpo": ("prompt", "chosen", "rejected"),
    "lema": ("prompt", "completion"),
}


class TrainingFileError(ValueError):
    """A training file that cannot be used; the message names the row."""


def read_training_file(path: str | Path) -> tuple[list, str]:
    """(examples, kind): kind is chat, lema, salam_finetune (all become chat examples) or dpo (preference pairs)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise TrainingFileError(f"cannot read {path.name}: {error}") from None
    if not text.strip():
        raise TrainingFileError(f"{path.name} is empty")
    whole = _whole_json(text)
    if isinstance(whole, dict) and "instances" in whole:
        return _salam_instances(whole, path.name), "salam_finetune"
    rows = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    kind = None
    examples = []
    for number, line in rows:
        where = f"{path.name} line {number}"
        try:
            row = json.loads(line)
        except ValueError as error:
            raise TrainingFileError(f"{where}: not JSON ({error.msg})") from None
        row_kind = _kind(row, where)
        if kind is not None and row_kind != kind:
            raise TrainingFileError(f"{where}: a {row_kind} row in a file of {kind} rows; use one format per file")
        kind = row_kind
        examples.append(_example(row, row_kind, where))
    return examples, kind


def _whole_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _kind(row: Any, where: str) -> str:
    if not isinstance(row, dict):
        raise TrainingFileError(f"{where}: expected a JSON object, got {type(row).__name__}")
    for kind, keys in KINDS.items():
        if all(key in row for key in keys):
            return kind
    raise TrainingFileError(f"{where}: not a training row; expected {{messages}}, {{prompt, completion}} "
                            f"or {{prompt, chosen, rejected}}, found keys {sorted(row)[:8]}")


def _example(row: dict, kind: str, where: str):
    if kind == "chat":
        return TrainingExample(messages=_messages(row["messages"], where), source={})
    if kind == "dpo":
        prompt, chosen, rejected = (_text(row[key], f"{where}: {key}") for key in KINDS["dpo"])
        return PreferencePair(prompt=prompt, chosen=chosen, rejected=rejected, source={})
    prompt, completion = (_text(row[key], f"{where}: {key}") for key in KINDS["lema"])
    return _pair(prompt, completion)


def _salam_instances(data: dict, name: str) -> list[TrainingExample]:
    instances = data.get("instances")
    if not isinstance(instances, list) or not instances:
        raise TrainingFileError(f"{name}: 'instances' should be a non-empty list of {{input, output}}")
    examples = []
    for i, instance in enumerate(instances):
        where = f"{name} instance {i}"
        if not isinstance(instance, dict):
            raise TrainingFileError(f"{where}: expected {{input, output}}")
        examples.append(_pair(_text(instance.get("input"), f"{where}: input"), _text(instance.get("output"), f"{where}: output")))
    return examples


def _pair(prompt: str, answer: str) -> TrainingExample:
    return TrainingExample(messages=({"role": "user", "content": prompt}, {"role": "assistant", "content": answer}),
                           source={})


def _messages(messages: Any, where: str) -> tuple[dict, ...]:
    if not isinstance(messages, list) or len(messages) < 2:
        raise TrainingFileError(f"{where}: messages should list at least a user and an assistant turn")
    checked = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise TrainingFileError(f"{where}: messages[{i}].role should be one of {', '.join(ROLES)}")
        checked.append({"role": message["role"], "content": _text(message.get("content"), f"{where}: messages[{i}].content")})
    if checked[-1]["role"] != "assistant":
        raise TrainingFileError(f"{where}: the last message is what the model learns to say; it should be the assistant's")
    return tuple(checked)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TrainingFileError(f"{where} should be non-empty text")
    return value
