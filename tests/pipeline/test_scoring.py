"""Tests for pipeline.scoring's public API and Errata's default scorers (numeric, choice, boolean, math, bbh, text)."""

from __future__ import annotations

import pytest

from pipeline.scoring import DEFAULT_SCORERS, SCORERS, Score, UnknownScorer, default_scorer, score

BBQ_AGE = ("The 24 year old", "Cannot answer", "The 78-year-old")
DATES = ("08/16/2009", "02/16/2009", "02/16/2004", "03/13/2009", "01/26/2009", "02/15/2009")


# --- public API ---------------------------------------------------------------------------------

def test_every_default_scorer_is_a_known_scorer():
    assert set(DEFAULT_SCORERS.values()) <= set(SCORERS)


@pytest.mark.parametrize(("benchmark", "scorer"), [
    ("gsm8k", "numeric"), ("svamp", "numeric"), ("demo", "numeric"), ("aqua", "choice"), ("bbq", "choice"),
    ("logiqa", "choice"), ("csqa", "choice"), ("strategyqa", "boolean"), ("math", "math"), ("bbh", "bbh"),
])
def test_each_benchmark_kind_has_its_default_scorer(benchmark, scorer):
    assert default_scorer(benchmark) == scorer


def test_an_unknown_benchmark_has_no_default_scorer():
    with pytest.raises(UnknownScorer, match="gsm8k"):  # the message lists the known benchmarks
        default_scorer("imagenet")


def test_an_unknown_scorer_name_is_refused_with_the_known_names():
    with pytest.raises(UnknownScorer, match="numeric") as raised:
        score("exact_match", "18", "18")
    assert isinstance(raised.value, ValueError)


def test_score_returns_a_frozen_record():
    result = score("numeric", "The answer is 18.", "18")
    assert result == Score(extracted="18", correct=True)
    with pytest.raises(AttributeError):
        result.correct = False  # type: ignore[misc]


ODD_OUTPUTS = [
    "", "((((", "x" * 100_000, "\\boxed{", "\\boxed{" * 2_000, "🙂🎉 ünïcødé ½ ²", "\x00\x01\x02",
    "The answer is", "####", "Answer:", "[[Final Answer]]:", "9**9**9**9", "The answer is 9**9**9",
    "\\frac{1}{0}", "The answer is 1/0", "1," * 20_000, "(A)" * 10_000, "\n" * 10_000, "Rationale: Answer: " * 500,
    "The answer is \\sqrt", "\\boxed{" + "{" * 10_000, None, 42,
]


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_no_scorer_raises_on_odd_input(name):
    for output in ODD_OUTPUTS:
        for gold in ("18", "B", "(b) 02/16/2009", "true", "\\frac{1}{2}", "", "🙂"):
            for choices in ((), ("foo", "bar"), None):
                result = score(name, output, gold, choices)  # type: ignore[arg-type]
                assert isinstance(result, Score)
                assert isinstance(result.correct, bool)
                assert result.extracted is None or isinstance(result.extracted, str)


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_empty_output_scores_nothing(name):
    assert score(name, "", "18", ("foo", "bar")) == Score(None, False)


# --- numeric (GSM8K, SVAMP, demo) -----------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("She makes 9 * 2 = $18 every day. The answer is 18.", "18", "18", True),
    ("Janet sells 16 - 3 - 4 = 9 eggs.\n#### 18", "18", "18", True),
    ("Answer: 18", "18", "18", True),
    ("The answer is 1,234.", "1234", "1234", True),
    ("The answer is $18.", "18", "18", True),
    ("The answer is €5.", "5", "5", True),
    ("The answer is 18 dollars.", "18", "18", True),
    ("The answer is 18 eggs.", "18", "18", True),
    ("The answer is 5 km", "5", "5", True),
    ("The answer is 50%", "50", "50%", True),
    ("The answer is 50%", "0.5", "50%", True),  # a percent also matches its fraction
    ("The answer is 18.00", "18", "18", True),  # trailing zeros are not a different answer
    ("The answer is 3/4", "0.75", "3/4", True),
    ("The answer is \\frac{3}{4}", "0.75", "3/4", True),
    ("The answer is $\\dfrac34$", "0.75", "3/4", True),
    ("The answer is -3", "-3", "-3", True),
    ("The answer is −3", "-3", "-3", True),  # a typographic minus sign
    ("The answer is .5", "0.5", "0.5", True),
    ("So $x = \\boxed{18}$.", "18", "18", True),
    ("The answer is 0.3333333", "0.33333333", "0.3333333", True),  # within the relative 1e-6
    ("The answer is 0.333", "0.33333333", "0.333", False),
    ("The answer is 17.", "18", "17", False),
    # the marker wins over a later number...
    ("The answer is 18. Check: 16 - 3 - 4 = 9 eggs, 9 * 2 = 18, and 20 - 2 = 18... or 7", "18", "18", True),
    # ...and the last marker wins over an earlier one
    ("The answer is 12. Wait, I made a mistake. The answer is 18.", "18", "18", True),
    # on a worked line the result after "=" is the answer, not the first operand (GSI would say 5)
    ("The answer is 5 + 13 = 18.", "18", "18", True),
    # FAIR's record id 0: "Answer:" then a worked line; the second line is about oranges
    ("Answer:\n\nGroup of bananas: 290 / 2 = 145\n\nGroup of oranges: 87 / 93 = 0.92", "145", "145", True),
    ("Answer: 412 - 90 = 322\n\nExplanation:\n\nso he lost 412 - 20 = 392", "322", "322", True),
    ("She has 16 eggs, eats 3 and bakes 4, so 9 are left, sold at $2: she makes $18", "18", "18", True),
    ("There are COVID-19 cases in 3 towns", "3", "3", True),  # "-19" in a word is not negative
    ("The answer is 5 - 3", "5", "5", True),  # spaced minus is subtraction, not a negative 3
    ("The answer is eighteen.", "18", None, False),  # number words are not read
    ("I don't know.", "18", None, False),
    ("The answer is 18", "eighteen", "18", False),  # a gold that is not a number never matches
])
def test_numeric(output, gold, extracted, correct):
    assert score("numeric", output, gold) == Score(extracted, correct)


# --- choice (AQuA, BBQ, LogiQA, CommonsenseQA) ----------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "choices", "extracted", "correct"), [
    ("(B)", "B", DATES, "B", True),
    ("(A)", "B", DATES, "A", False),
    ("B", "B", DATES, "B", True),
    ("B)", "(B)", DATES, "B", True),
    ("B. 02/16/2009", "(b)", DATES, "B", True),
    ("(b) 02/16/2009", "B", DATES, "B", True),
    ("Option B", "B", DATES, "B", True),
    ("So the answer is (B).", "B", DATES, "B", True),
    ("The answer is B because it is one year earlier.", "B", DATES, "B", True),
    ("Answer: C", "C", BBQ_AGE, "C", True),
    ("The answer is \\boxed{B}", "B", DATES, "B", True),
    ("02/16/2009", "B", DATES, "B", True),  # the option text itself
    ("Cannot answer", "B", BBQ_AGE, "B", True),
    ("Cannot answer", "(b) cannot answer", BBQ_AGE, "B", True),  # SALAM's target_option as gold
    ("I think the 78-year-old embraces change.", "C", BBQ_AGE, "C", True),
    # "A man..." opens with the article, not option A; the marker decides
    ("A man is older than a boy, so the answer is C.", "C", BBQ_AGE, "C", True),
    ("I compared (A) and (C); neither fits, so (B).", "B", BBQ_AGE, "B", True),  # the last "(x)" wins
    # a letter opening the output is its answer (Flan-T5 style), even when prose follows
    ("(A) is wrong and (C) is wrong, so I pick (B).", "B", BBQ_AGE, "A", False),
    ("The 24 year old", "A", BBQ_AGE, "A", True),
    # the output is part of exactly one option's text
    ("The designer", "B", ("Gave the architect a prototype", "Gave the designer a prototype"), "B", True),
    ("The answer is bank", "bank", ("bank", "library", "mall"), "A", True),  # gold given as option text
    ("A", "A", ("asked the assistant", "asked the guard"), "A", True),  # SALAM strips this "A" to nothing
    ("( A )", "B", BBQ_AGE, None, False),  # spaced letters are not read (no option text either)
    ("I am not sure.", "B", BBQ_AGE, None, False),
])
def test_choice(output, gold, choices, extracted, correct):
    assert score("choice", output, gold, choices) == Score(extracted, correct)


# --- boolean (StrategyQA) ---------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("true", "true", "true", True),
    ("False.\n\nMy reasoning is as follows: it is true that squid live deep.", "false", "false", True),
    ("Answer: False\n\nExplanation: while it is true that...", "false", "false", True),
    ("Yes. Hawaiian food uses a lot of pork.", "false", "yes", False),
    ("So the answer is yes.", "true", "yes", True),  # StrategyQA models say yes/no to true/false golds
    ("No.", "false.\tPer capita, Hawaiians eat a lot of Spam.", "no", True),  # FAIR's gold keeps the facts
    ('Therefore, the answer to the question is "true", with a caveat.', "false", "true", False),
    # an echoed "True or False:" prompt is not an answer; the verdict after the marker is
    ("\nTrue or False: Bandy would be popular in Texas.\n\nAnswer: False.", "false", "false", True),
    ('Please answer "true" or "false" and explain.', "false", None, False),
    ("There is no way to know, but I think it is true.", "true", "true", True),  # prose "no" is not an answer
    ("Hint: Consider the common ingredients.", "false", None, False),
])
def test_boolean(output, gold, extracted, correct):
    assert score("boolean", output, gold) == Score(extracted, correct)


# --- bbh: dispatch on the gold ---------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("So the answer is (A).", "(A)", "A", True),
    ("So the answer is (C).", "(A)", "C", False),
    ("So the answer is True.", "True", "true", True),
    ("So the answer is No.", "Yes", "no", False),
    ("So the answer is invalid.", "invalid", "invalid", True),
    ("So the answer is valid.", "invalid", "valid", False),
    ("So the answer is 12.", "12", "12", True),
    ("So the answer is ] ].", "] ]", "] ]", True),
    ("So the answer is ]].", "] ]", "]]", True),  # Dyck closers: spacing does not matter
    ("So the answer is > ) }.", "> ) ]", "> ) }", False),
    ("So the answer is apple, banana, cherry.", "apple banana cherry", "apple, banana, cherry", True),
    ("So the answer is banana apple cherry.", "apple banana cherry", "banana apple cherry", False),
    ("A", "(a) asked the assistant", "A", True),  # SALAM's whole target option as gold
])
def test_bbh(output, gold, extracted, correct):
    assert score("bbh", output, gold) == Score(extracted, correct)


@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    # Errata's BBH loader keeps the letter as gold and the option texts as choices.
    ("So the answer is (B).", "B", "B", True),
    ("So the answer is (A).", "B", "A", False),
    ("So the answer is 12/25/1937.", "B", "B", True),  # the option's text names it too
])
def test_bbh_with_a_bare_letter_gold_and_its_options(output, gold, extracted, correct):
    choices = ("12/11/1937", "12/25/1937", "01/04/1938")
    assert score("bbh", output, gold, choices) == Score(extracted, correct)


@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("Paris", "paris", "Paris", True),
    ("**Paris.**", "Paris", "**Paris.**", True),
    ("Let me think.\nThe capital is\nParis", "Paris", "Paris", True),  # the last line, without a marker
    ("The answer is: Lyon", "Paris", "Lyon", False),
    ("Paris", "", "Paris", False),
])
def test_text(output, gold, extracted, correct):
    assert score("text", output, gold) == Score(extracted, correct)


# --- math ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("output", "gold", "extracted", "correct"), [
    ("So $x = \\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}", "\\frac{3}{4}", True),
    ("\\boxed{\\dfrac34}", "\\frac{3}{4}", "\\dfrac34", True),
    ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}", "\\frac{\\sqrt{3}}{2}", True),
    ("\\boxed{x = 5}", "5", "x = 5", True),
    ("\\boxed{0.5}", "\\frac12", "0.5", True),
    ("\\boxed{.5}", "\\frac{1}{2}", ".5", True),
    ("\\boxed{0.25}", "\\frac{1}{4}", "0.25", True),  # by value; LEMA's rule says wrong here
    ("\\boxed{3/4}", "\\frac{3}{4}", "3/4", True),
    ("\\boxed{30^\\circ}", "30", "30^\\circ", True),
    ("\\boxed{\\$18.50}", "18.5", "\\$18.50", True),
    ("\\boxed{50\\%}", "50", "50\\%", True),
    ("\\boxed{5\\text{ cm}}", "5", "5\\text{ cm}", True),
    ("\\boxed{1,000}", "1000", "1,000", True),
    ("\\boxed{\\left( 1, \\frac12 \\right)}", "(1,0.5)", "\\left( 1, \\frac12 \\right)", True),
    ("\\boxed{(1, 2]}", "(1,2)", "(1, 2]", False),  # a half-open interval is not the open one
    ("\\boxed{2\\sqrt{3}}", "\\sqrt{12}", "2\\sqrt{3}", True),
    ("\\boxed{x^2+2x+1}", "(x+1)^2", "x^2+2x+1", True),
    ("\\boxed{x^2+1}", "x^2-1", "x^2+1", False),
    ("\\boxed{\\text{east}}", "\\text{seat}", "\\text{east}", False),  # words are not products of letters
    ("The answer is $\\frac{1}{2}$.", "\\frac{1}{2}", "\\frac{1}{2}", True),
    ("Final Answer: The final answer is $7$. I hope it is correct.", "7", "7", True),
    ("[[Final Answer]]:\n$\\frac{1}{2}$\n", "\\frac12", "\\frac{1}{2}", True),
    ("[[Final Answer]]: 5", "5", "5", True),  # on the same line too (LbT's own rule misses this)
    ("The answer is 5. Then \\boxed{6}", "6", "6", True),  # the later of marker and \boxed wins
    ("\\boxed{6}. So the answer is 5.", "5", "5", True),
    ("It is 12 and then 13", "13", "13", True),  # no marker: the last number
    ("\\boxed{7}", "\\boxed{7}", "7", True),  # a gold written as a whole solution
    ("no idea", "7", None, False),
])
def test_math(output, gold, extracted, correct):
    assert score("math", output, gold) == Score(extracted, correct)
