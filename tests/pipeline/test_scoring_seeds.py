"""Tests for the seed-faithful scorers: each reproduces its paper's rule, quirks included, and loses to the default where it errs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.scoring import Score, default_scorer, score

SEED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "seed-data"
needs_shared = pytest.mark.skipif(not SEED_DATA.is_dir(), reason="needs ../shared (not in a user's clone)")

DATES = ("08/16/2009", "02/16/2009", "02/16/2004", "03/13/2009", "01/26/2009", "02/15/2009")
FAIR_SVAMP_ID_0 = "Answer:\n\nGroup of bananas: 290 / 2 = 145\n\nGroup of oranges: 87 / 93 = 0.92"


# --- SALAM (BBH / BBQ) -------------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "choices", "extracted", "correct"), [
    ("(A)", "(b) 02/16/2009", (), "(a)", False),
    ("(B)", "(b) 02/16/2009", (), "(b)", True),
    ("(b) 02/16/2009", "(b) 02/16/2009", (), "(b)", True),
    ("02/16/2009", "(b) 02/16/2009", (), "02/16/2009", True),  # the option text is inside the target
    ("(B)", "B", DATES, "(b)", True),  # a letter gold is widened to "(b) 02/16/2009"
    ("(B)", "(B)", DATES, "(b)", True),
    ("02/16/2009", "(b)", DATES, "02/16/2009", True),
    ("The answer (A) is wrong. (C) is right", "(c) cannot answer", (), "(a)", False),  # the FIRST (x)
    ("Cannot answer.", "(c) cannot answer", (), "cannot answer", True),
    # lstrip("A: ") strips a set of characters: a bare "A" becomes "" and is wrong even for (A)...
    ("A", "(a) the fugitive", (), None, False),
    # ...and "A)" becomes ")", which is inside every target, so it is right for (B)
    ("A)", "(b) up", (), ")", True),
    ("Alex sent the letter", "(c) ambiguous", (), "lex sent the letter", False),
    # one letter found anywhere in the target: SALAM's "E" is right for "(i) sector"
    ("E", "(i) sector", (), "e", True),
    ("（B）", "(b) 02/16/2009", (), "(b)", True),  # full-width brackets
    ("True", "True", (), "true", True),  # a free-form BBH target, compared the same way
])
def test_salam_mc(output, gold, choices, extracted, correct):
    assert score("salam_mc", output, gold, choices) == Score(extracted, correct)


# --- LEMA GSM8K ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("Janet sells 9 eggs at $2. The answer is 18.", "18", "18", True),
    ("The answer is $1,234.", "1234", "1234", True),
    ("The answer is: 18", "18", "18", True),
    ("The answer is 18 eggs.", "18", "18", True),
    ("The answer is 9 * 2 = 18.", "18", "18", True),  # what follows the last "="
    ("The answer is 3/4.", "0.75", "0.75", True),  # evaluated (safely, not with eval())
    ("The answer is 50%.", "50", "50", True),
    ("The answer is £5.", "5", "5", True),
    ("The answer is 17.", "18", "17", False),
    ("She makes $18 a day.", "18", None, False),  # no trigger, nothing read
    # every letter is deleted wherever it is, so "18 eggs and 2 hens" reads as 182
    ("The answer is 18 eggs and 2 hens.", "18", "182", False),
    ("The answer is ¥5.", "5", None, False),  # only $, £ and € are stripped
])
def test_lema_gsm8k(output, gold, extracted, correct):
    assert score("lema_gsm8k", output, gold) == Score(extracted, correct)


# --- GSI GSM8K / SVAMP -----------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("9 * 2 = 18\nThe answer is 18", "18", "18", True),
    ("The answer is 18.00", "18", "18", True),  # trailing zeros dropped
    ("The answer is 0.50", "0.5", "0.5", True),
    ("The answer is 1,234", "1234", "1234", True),
    ("The answer is 3/4", "0.75", "0.75", True),
    ("She makes 9 * 2 = 18 dollars", "18", "18", True),  # no trigger: the last number
    ("The answer is 12. No wait. The answer is 18", "18", "18", True),  # the last trigger
    # the FIRST number after the trigger, so a worked answer reads as its first operand
    ("The answer is 5 + 13 = 18", "18", "5", False),
    ("The answer is eighteen", "18", None, False),
])
def test_gsi_numeric(output, gold, extracted, correct):
    assert score("gsi_numeric", output, gold) == Score(extracted, correct)


# --- FAIR GSM8K / SVAMP ----------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("Let me think.\nAnswer: 18", "18", "18", True),
    ("9 * 2 = 18. Therefore, the answer is 18.", "18", "18", True),
    ("9 * 2 = 18", "18", "18", True),  # no trigger: the last number
    # record id 0 of FAIR's SVAMP file: the output is stripped first, so "Answer:" at the very
    # start is no "\nAnswer" trigger and the last number (0.92) is read instead of 145
    (FAIR_SVAMP_ID_0, "145", "0.92", False),
    ("Answer: 412 - 90 = 322\n\nExplanation:\nso he lost 412 - 20 = 392", "322", "392", False),  # id 5
    ("Work.\nAnswer: 18.00", "18", "18.00", False),  # exact strings: trailing zeros count
    ("Work.\nAnswer: 1,234", "1234", "1234", True),
    ("Work.\nAnswer: 12\nMore.\nAnswer: 18", "18", "12", False),  # the text after the FIRST trigger
    ("Work.\nAnswer: none", "18", None, False),
])
def test_fair_numeric(output, gold, extracted, correct):
    assert score("fair_numeric", output, gold) == Score(extracted, correct)


# --- MATH (LEMA's boxed / "The answer is" rule) ------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("So $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}", "\\frac{1}{2}", True),
    ("\\boxed{\\dfrac12}", "\\frac{1}{2}", "\\frac{1}{2}", True),
    ("\\boxed{0.5}", "\\frac12", "\\frac{1}{2}", True),  # "0.5" is special-cased to \frac{1}{2}
    ("\\boxed{.5}", "\\frac12", "\\frac{1}{2}", True),
    ("The answer is $\\frac{3}{4}$.", "3/4", "\\frac{3}{4}", True),
    ("The answer is: 5", "5", "5", True),
    ("\\boxed{x = 5}", "5", "5", True),
    ("\\boxed{10^\\circ}", "10", "10", True),
    ("\\boxed{\\left( 1, 2 \\right)}", "(1,2)", "(1,2)", True),
    ("\\boxed{5\\text{ cm}}", "5", "5", True),
    ("\\boxed{50\\%}", "50", "50", True),
    ("\\boxed{6}. The answer is 5.", "6", "5", False),  # the trigger beats any \boxed{} outside its tail
    ("The answer is 5 or \\boxed{6}", "6", "6", True),  # ...but a \boxed{} after it is taken
    ("\\boxed{0.25}", "\\frac14", "0.25", False),  # only 0.5 gets the fraction treatment
    ("\\fbox{5}", "5", None, False),  # only "\boxed{" is read
    ("\\boxed{5\\text{ m}\\text{ s}}", "5", None, False),  # two "\text{ " units: the normaliser gives up
    ("no answer here", "5", None, False),
])
def test_math_boxed(output, gold, extracted, correct):
    assert score("math_boxed", output, gold) == Score(extracted, correct)


# --- MATH (LbT) ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("Step 1...\n[[Final Answer]]:\n$\\frac{1}{2}$\n", "\\frac12", "\\frac{1}{2}", True),
    ("Step 1...\n[[Final Answer]]:\n5 units\nThanks", "5", "5", True),  # Minerva drops unit words
    ("Step 1...\nSo the result is\n\\frac{1}{2}", "0.5", "\\frac{1}{2}", True),  # no marker: the last line
    ("[[Final Answer]]:\n\\text{(A)}\n", "(A)", "(A)", True),
    ("[[Final Answer]]:\n5\n", "6", "5", False),
    # the seed's pattern wants the answer on the NEXT line: on the same line the last line is read
    ("[[Final Answer]]: 5", "5", "[[FinalAnswer]]:5", False),
    ("[[Final Answer]]: 5\nDone", "5", "Done", False),
])
def test_lbt_math(output, gold, extracted, correct):
    assert score("lbt_math", output, gold) == Score(extracted, correct)


# --- AQuA / MathQA ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("The speed is 5 km/h. The answer is (C).", "C", "C", True),
    ("The answer is C", "C", "C", True),
    ("The answer is (c)", "(C)", "C", True),
    ("The answer is B) 65", "B", "B", True),
    ("The answer is E", "A", "E", False),
    ("So (C) is right.", "C", None, False),  # no trigger, nothing read
    ("The answer is 65 dollars.", "B", None, False),  # the value, not the letter
])
def test_aqua_letter(output, gold, extracted, correct):
    assert score("aqua_letter", output, gold) == Score(extracted, correct)


# --- CommonsenseQA (LEMA) ---------------------------------------------------------------------------

BANK = ("bank", "library", "department store", "mall", "new york")


@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("A bank has guards. The answer is bank.", "bank", "bank", True),
    ("The answer is banks.", "bank", "bank", True),  # nearest by edit distance
    ("The answer is Department Store.", "department store", "department store", True),
    ("The answer is the mall.", "bank", "mall", False),
    ("The answer is bank.", "A", "bank", True),  # gold as a letter
    ("A bank has guards.", "bank", None, False),  # no trigger, nothing read
])
def test_csqa_nearest(output, gold, extracted, correct):
    assert score("csqa_nearest", output, gold, BANK) == Score(extracted, correct)


# --- StrategyQA (FAIR) ------------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("\nFalse.\n\nMy reasoning is as follows:", "true.\tGiant squid live deep.", "false", False),
    ("Answer: True", "true", "true", True),
    ("false", "False", "false", True),
    ("Yes, it is.", "yes", None, False),  # only the words true/false are read
    ("Hint: Consider the ingredients.", "false", None, False),  # neither word: wrong, not "false"
    # "true" is looked for first, so an echoed "True or False:" reads as true (FAIR record id 3)
    ("\nTrue or False: In Mumbai, Solanum melongena is an eggplant.", "false", "true", False),
    ("It is true that hippos live in Africa, but the answer is False.", "false", "true", False),
    ("That claim is untrue.", "false", "true", False),  # a substring, not a word
])
def test_strategyqa_bool(output, gold, extracted, correct):
    assert score("strategyqa_bool", output, gold) == Score(extracted, correct)


# --- LogiQA (FAIR) -----------------------------------------------------------------------------------

PEPPERS = ("All southerners like peppers.", "Some people who like peppers are southerners.",
           "No southerner likes peppers.", "Peppers")


@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("Answer:\n\nThe correct answer is: 'Some people who like peppers are southerners.'\n\nRationale: ...",
     "1", "B", True),
    ("Answer: Some people who like peppers are southerners.\nRationale: ...", "B", "B", True),
    ("Answer: No southerner likes peppers.\nRationale: ...", "B", "C", False),
    ("Answer: Some people who like peppers are southerners.", "B", None, False),  # no "Rationale:"
    ("Answer: B\nRationale: ...", "B", None, False),  # a letter is not an option text
    # options are tried in list order: "Peppers" is inside no earlier option's text, but an
    # answer naming option A's text matches A first even if it also quotes "Peppers"
    ("Answer: All southerners like peppers. Peppers!\nRationale: x", "D", "A", False),
    ("Answer: first try\nRationale: x\nAnswer: Peppers\nRationale: y", "3", "D", True),  # the last section
])
def test_logiqa_option(output, gold, extracted, correct):
    assert score("logiqa_option", output, gold, PEPPERS) == Score(extracted, correct)


# --- where a seed rule errs and the default does not ---------------------------------------------------

@pytest.mark.parametrize(("seed_scorer", "benchmark", "output", "gold", "choices"), [
    # FAIR: "Answer:" at the start is missed, the oranges' 0.92 is read (SVAMP record id 0)
    ("fair_numeric", "svamp", FAIR_SVAMP_ID_0, "145", ()),
    # GSI: the first number after the trigger is an operand
    ("gsi_numeric", "gsm8k", "The answer is 5 + 13 = 18", "18", ()),
    # LEMA: letters deleted everywhere glue two numbers together
    ("lema_gsm8k", "gsm8k", "The answer is 18 eggs, 2 hens.", "18", ()),
    # SALAM: a bare "A" is stripped away
    ("salam_mc", "bbq", "A", "(a) undetermined", ("Undetermined", "The old man", "The young man")),
    # LEMA MATH: 0.25 is not normalised to \frac{1}{4}
    ("math_boxed", "math", "\\boxed{0.25}", "\\frac14", ()),
    # LbT: the answer on the marker's own line
    ("lbt_math", "math", "[[Final Answer]]: 5", "5", ()),
    # FAIR StrategyQA: "true" appears before the verdict
    ("strategyqa_bool", "strategyqa", "It is true that hippos live in Africa, but the answer is False.",
     "false", ()),
    # FAIR LogiQA: the bare letter is not read
    ("logiqa_option", "logiqa", "Answer: B\nRationale: ...", "B", PEPPERS),
    # AQuA: no trigger, no answer
    ("aqua_letter", "aqua", "So (C) is right.", "C", ("5", "6", "7", "8", "9")),
    # CSQA: the trigger is missing
    ("csqa_nearest", "csqa", "Answer: bank", "bank", BANK),
])
def test_the_default_is_right_where_the_seed_rule_is_wrong(seed_scorer, benchmark, output, gold, choices):
    assert not score(seed_scorer, output, gold, choices).correct
    assert score(default_scorer(benchmark), output, gold, choices).correct


# --- the real seed files -------------------------------------------------------------------------------

@needs_shared
def test_every_gsm8k_rule_reads_the_gold_rationales_right():
    # GSI's pool of gold chain-of-thought rationales, each ending "The answer is N"
    records = json.loads((SEED_DATA / "gsi/inference/cot/gsm8k.json").read_text())
    for name in ("numeric", "gsi_numeric", "lema_gsm8k", "fair_numeric"):
        wrong = [record["item_id"] for record in records
                 if not score(name, record["answer_cot"], record["answer_value"]).correct]
        assert wrong == [], name


@needs_shared
def test_fair_svamp_record_0_is_the_documented_quirk():
    records = json.loads((SEED_DATA / "fair/Llama-2-7b-chat-hf_svamp_false_round0.json").read_text())
    record = next(record for record in records if record["id"] == 0)
    assert record["student_wrong_pred"] == FAIR_SVAMP_ID_0
    assert score("fair_numeric", record["student_wrong_pred"], record["gold_answer"]) == Score("0.92", False)
    assert record["student_wrong_final_answer"] == "0.92"
    assert score("numeric", record["student_wrong_pred"], record["gold_answer"]) == Score("145", True)


@needs_shared
def test_lema_csqa_candidates_are_found_by_both_rules():
    lines = (SEED_DATA / "lema/test_data/csqa_dev.jsonl").read_text().splitlines()[:200]
    for record in map(json.loads, lines):
        output = f"Let's think step by step. The answer is {record['answer']}."
        for name in ("csqa_nearest", "choice"):
            assert score(name, output, record["answer"], record["candidates"]).correct, (name, record)
