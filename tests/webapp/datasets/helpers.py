"""Small GSM8K-format files written by the tests themselves."""

from __future__ import annotations

import json
from pathlib import Path


def gsm8k_lines(count: int, *, start: int = 0) -> list[str]:
    return [
        json.dumps({"question": f"Tom has {i} apples and buys 2 more. How many now?",
                    "answer": f"{i} + 2 = <<{i}+2={i + 2}>>{i + 2}\n#### {i + 2}"})
        for i in range(start, start + count)
    ]


def write_gsm8k(path: Path, count: int, *, start: int = 0) -> Path:
    path.write_text("\n".join(gsm8k_lines(count, start=start)) + "\n")
    return path
