"""The dataset formats Errata reads: their names, benchmark kinds and the functions that read them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from pipeline.benchmarks import bbh, bbq, gsi, gsm8k, hendrycks_math, lema, logiqa, salam, strategyqa, svamp
from pipeline.benchmarks.reading import Item, SourceFile, json_items
from pipeline.benchmarks.records import ProblemRecord


@dataclass(frozen=True)
class FormatInfo:
    """What the web app shows for a format; ``benchmark`` and ``answer_format`` are the usual values."""

    name: str
    benchmark: str
    answer_format: str
    description: str


@dataclass(frozen=True)
class Reader:
    """How one format is read: raw items of a file, one record per item, the kind of the whole load."""

    looks_like: Callable[[Any], bool]
    convert: Callable[[Item], ProblemRecord]
    items: Callable[[SourceFile], Iterator[Item]] = json_items
    classify: Callable[[list[ProblemRecord]], tuple[str, str]] | None = None
    plain_text: bool = False  # looks_like gets the first lines instead of the first JSON record


FORMATS: dict[str, FormatInfo] = {info.name: info for info in (
    FormatInfo("gsm8k", "gsm8k", "number", "GSM8K JSON Lines: question + answer ending '#### N'"),
    FormatInfo("svamp", "svamp", "number", "SVAMP JSON array: ID, Body, Question, Equation, Answer, Type"),
    FormatInfo(
        "bbh", "bbh", "multiple_choice",
        "BIG-Bench Hard task JSON: {canary, examples: [{input, target}]}, one file per task",
    ),
    FormatInfo("bbq", "bbq", "multiple_choice", "BBQ JSON Lines: context, question, ans0-ans2, label, category"),
    FormatInfo("strategyqa", "strategyqa", "boolean", "StrategyQA JSON array: qid, question, answer true/false"),
    FormatInfo(
        "logiqa", "logiqa", "multiple_choice",
        "LogiQA text: 8 lines per problem (blank, gold letter, context, question, 4 options)",
    ),
    FormatInfo(
        "math", "math", "math",
        "MATH JSON: {problem, level, type, solution with \\boxed{}}, a file per problem, an array or JSON Lines",
    ),
    FormatInfo(
        "lema_choice", "csqa", "multiple_choice",
        "LEMA JSON Lines {prompt, answer, candidates}: CommonsenseQA or AQuA",
    ),
    FormatInfo(
        "lema_cot", "gsm8k", "number",
        "LEMA JSON Lines {prompt, completion ending 'The answer is N'}: GSM8K or MATH",
    ),
    FormatInfo(
        "gsi", "gsm8k", "number",
        "GSI JSON array {item_id, question, answer_value[, answer_cot, options]}: GSM8K, SVAMP or AQuA",
    ),
    FormatInfo(
        "salam_collection", "bbh", "multiple_choice",
        "SALAM mistake/correct collection JSON: response/prompt_str, response/target_str, task (BBH or BBQ)",
    ),
    FormatInfo(
        "salam_status", "bbh", "multiple_choice",
        "SALAM status.json: each task's train_set and test_set (BBH or BBQ), split included",
    ),
)}

# Detection tries readers in this order, so a reader whose keys are a subset of another's comes later.
READERS: dict[str, Reader] = {
    "bbh": Reader(bbh.looks_like, bbh.convert, bbh.items, bbh.classify),
    "bbq": Reader(bbq.looks_like, bbq.convert),
    "svamp": Reader(svamp.looks_like, svamp.convert),
    "strategyqa": Reader(strategyqa.looks_like, strategyqa.convert),
    "math": Reader(hendrycks_math.looks_like, hendrycks_math.convert),
    "lema_choice": Reader(lema.looks_like_choice, lema.convert_choice, classify=lema.classify_choice),
    "lema_cot": Reader(lema.looks_like_cot, lema.convert_cot, classify=lema.classify_cot),
    "gsi": Reader(gsi.looks_like, gsi.convert, classify=gsi.classify),
    "salam_collection": Reader(salam.looks_like_collection, salam.convert_collection, classify=salam.classify),
    "salam_status": Reader(salam.looks_like_status, salam.convert_status, salam.status_items, salam.classify),
    "gsm8k": Reader(gsm8k.looks_like, gsm8k.convert),
    "logiqa": Reader(logiqa.looks_like, logiqa.convert, logiqa.items, plain_text=True),
}
