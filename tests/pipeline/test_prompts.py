"""Student prompts: each style and preset shows the question, options and answer format; few-shot picks fair shots."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from pipeline.benchmarks.records import ProblemRecord
from pipeline.prompts import (
    PRESET_SCORERS, PRESETS, STYLES, PromptConfig, PromptError, choose_shots, rationale_body, render_question,
    student_messages, suggested_scorer, validate_prompt_config, worked_answer,
)
from pipeline.scoring import SCORERS, score

CHOICE = ProblemRecord(external_id="mc-1", question="Which number is larger?", gold_answer="B",
                       choices=("three", "seven", "five"), gold_rationale="Seven is more than three and five.")
NUMBER = ProblemRecord(external_id="num-1", question="Tom has 3 apples and buys 4 more. How many now?",
                       gold_answer="7", gold_rationale="He starts with 3.\n3 + 4 = 7\nThe answer is 7")
ALL_CASES = [(preset, style) for preset in PRESETS for style in STYLES]


def pool(n: int, *, rationale: bool = True) -> list[ProblemRecord]:
    return [ProblemRecord(external_id=f"train-{i}", question=f"What is {i} + 1?", gold_answer=str(i + 1),
                          gold_rationale=f"{i} + 1 = {i + 1}" if rationale else "", split="train")
            for i in range(n)]


def config(preset: str, style: str, k: int = 2, seed: int = 0) -> PromptConfig:
    return PromptConfig(style=style, preset=preset, k_shots=k if style == "few_shot" else 0, shot_seed=seed)


def render(problem: ProblemRecord, cfg: PromptConfig, train: list[ProblemRecord]) -> list[dict]:
    return student_messages(problem, cfg, choose_shots(problem, train, cfg))


@pytest.mark.parametrize("preset,style", ALL_CASES)
def test_every_style_and_preset_asks_the_question_with_lettered_options_and_the_answer_format(preset, style):
    messages = render(CHOICE, config(preset, style), pool(5))
    last = messages[-1]
    assert last["role"] == "user"
    assert last["content"].startswith("Which number is larger?\nOptions:\n(A) three\n(B) seven\n(C) five")
    assert PRESETS[preset].final_answer("(X)") in last["content"]
    assert PRESETS[preset].trigger in last["content"]


@pytest.mark.parametrize("preset,style", [(p, s) for p, s in ALL_CASES if not PRESETS[p].choices_only])
def test_every_open_answer_preset_asks_for_its_final_line(preset, style):
    last = render(NUMBER, config(preset, style), pool(5))[-1]["content"]
    assert last.startswith(NUMBER.question)
    assert "Options:" not in last
    assert PRESETS[preset].final_answer("X") in last


def test_the_salam_preset_refuses_a_question_without_options():
    with pytest.raises(PromptError, match="salam.*multiple-choice.*num-1"):
        student_messages(NUMBER, config("salam", "cot"))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_says_whose_style_it_follows_and_which_scorer_suits_it(preset):
    description = PRESETS[preset].description
    assert preset.upper() in description.upper() or preset == "errata"
    assert any(name in description for name in SCORERS)
    assert set(PRESET_SCORERS[preset].values()) <= set(SCORERS)


def test_zero_shot_and_chain_of_thought_ask_differently():
    zero = student_messages(NUMBER, config("errata", "zero_shot"))[-1]["content"]
    cot = student_messages(NUMBER, config("errata", "cot"))[-1]["content"]
    assert "step by step" in cot and "step by step" not in zero


def test_the_system_message_comes_from_the_preset_unless_overridden():
    system = {"role": "system", "content": PRESETS["errata"].system}
    assert student_messages(NUMBER, config("errata", "cot"))[0] == system
    custom = replace(config("errata", "cot"), system="Be brief.")
    assert student_messages(NUMBER, custom)[0] == {"role": "system", "content": "Be brief."}
    assert student_messages(NUMBER, config("lema", "cot"))[0]["role"] == "user"  # LEMA has no system text


def test_render_question_letters_options_and_leaves_open_questions_alone():
    assert render_question(NUMBER) == NUMBER.question
    assert render_question(replace(CHOICE, choices=("x", "y"))) == "Which number is larger?\nOptions:\n(A) x\n(B) y"


# --- few-shot ---------------------------------------------------------------------------------


def test_few_shot_picks_k_distinct_train_problems_never_the_problem_itself():
    train = pool(20)
    problem = train[3]
    for seed in range(30):
        shots = choose_shots(problem, train, config("gsi", "few_shot", k=4, seed=seed))
        assert len({s.external_id for s in shots}) == 4
        assert problem.external_id not in {s.external_id for s in shots}


def test_few_shot_skips_a_train_problem_with_the_same_question_under_another_id():
    train = pool(3)
    twin = replace(train[0], external_id="test-0", split="test")
    shots = choose_shots(twin, train, config("gsi", "few_shot", k=2))
    assert train[0] not in shots


def test_few_shot_is_deterministic_per_seed_and_problem_and_ignores_pool_order():
    train = pool(30)
    cfg = config("gsi", "few_shot", k=3, seed=1)
    first = choose_shots(NUMBER, train, cfg)
    shuffled = train[:]
    random.Random(5).shuffle(shuffled)
    assert choose_shots(NUMBER, shuffled, cfg) == first
    assert choose_shots(NUMBER, train, replace(cfg, shot_seed=2)) != first
    assert choose_shots(replace(NUMBER, external_id="num-2"), train, cfg) != first


def test_few_shot_prefers_examples_with_a_rationale():
    train = pool(10, rationale=False) + [replace(p, external_id=f"r{i}") for i, p in enumerate(pool(2))]
    shots = choose_shots(NUMBER, train, config("gsi", "few_shot", k=2))
    assert {s.external_id for s in shots} == {"r0", "r1"}


def test_few_shot_needs_enough_other_problems():
    with pytest.raises(PromptError, match="needs 3 worked example.*only 2 other"):
        choose_shots(NUMBER, pool(2), config("gsi", "few_shot", k=3))


def test_other_styles_choose_no_shots():
    assert choose_shots(NUMBER, pool(5), config("gsi", "cot")) == []


def test_few_shot_examples_are_alternating_turns_ending_with_the_gold_answer():
    train = [NUMBER, replace(CHOICE, question="Pick the even one.", external_id="mc-2")]
    cfg = config("errata", "few_shot", k=2)
    messages = student_messages(CHOICE, cfg, choose_shots(CHOICE, train, cfg))
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    replies = {m["content"] for m in messages if m["role"] == "assistant"}
    # GSI-style rationales already end with "The answer is 7": that line is not written twice
    assert "He starts with 3.\n3 + 4 = 7\nThe answer is 7." in replies
    assert "Seven is more than three and five.\nThe answer is (B)." in replies  # the letter, not the text


def test_salam_examples_put_the_letter_first():
    assert worked_answer(CHOICE, "salam") == "(B)\nSeven is more than three and five."
    assert worked_answer(replace(CHOICE, gold_rationale=""), "salam") == "(B)"


FORMAT_CASES = [
    (CHOICE, "multiple_choice"),
    (NUMBER, "number"),
    (ProblemRecord(external_id="b", question="Is ice cold?", gold_answer="true", gold_rationale="Ice is frozen water."),
     "boolean"),
    (ProblemRecord(external_id="m", question="Simplify 2/4.", gold_answer="\\frac{1}{2}", gold_rationale="Halve it."),
     "math"),
]


@pytest.mark.parametrize("preset,problem,answer_format", [
    (preset, problem, answer_format) for preset in PRESETS for problem, answer_format in FORMAT_CASES
    if problem.choices or not PRESETS[preset].choices_only
])
def test_a_reply_in_each_presets_format_is_read_right_by_its_suggested_scorer(preset, problem, answer_format):
    reply = worked_answer(problem, preset)
    assert score(suggested_scorer(preset, answer_format), reply, problem.gold_answer, problem.choices).correct


def test_student_messages_refuse_shots_that_do_not_fit_the_style():
    with pytest.raises(PromptError, match="needs worked examples"):
        student_messages(NUMBER, config("gsi", "few_shot", k=1))
    with pytest.raises(PromptError, match="style is 'cot'"):
        student_messages(NUMBER, config("gsi", "cot"), pool(1))


@pytest.mark.parametrize("text,body", [
    ("a\nb\nThe answer is 7", "a\nb"),
    ("a\nb\n#### 7", "a\nb"),
    ("a\nSo the answer is (B).", "a"),
    ("a\n[[Final Answer]]: 7", "a"),
    ("a\n[[Final Answer]]:\n7", "a"),  # LbT's layout: the answer on the line below the marker
    ("a\nAnswer: 7", "a"),
    ("a\nb = 7", "a\nb = 7"),  # a last step that is not an answer line stays
    ("The answer is not obvious.\nb = 7", "The answer is not obvious.\nb = 7"),
    ("", ""),
])
def test_rationale_body_drops_only_a_closing_answer_line(text, body):
    assert rationale_body(text) == body


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg,pool_size,message", [
    (PromptConfig(style="socratic"), 10, "unknown prompt style 'socratic'; known styles: zero_shot, cot, few_shot"),
    (PromptConfig(preset="alpaca"), 10, "unknown prompt preset 'alpaca'; known presets: errata, salam, lema"),
    (PromptConfig(style="few_shot"), 10, "few_shot needs k_shots of at least 1"),
    (PromptConfig(style="cot", k_shots=2), 10, "k_shots is only used by the few_shot style"),
    (PromptConfig(style="few_shot", k_shots=-1), 10, "k_shots must be between 0 and 16, got -1"),
    (PromptConfig(style="few_shot", k_shots=17), 100, "k_shots must be between 0 and 16, got 17"),
    (PromptConfig(style="few_shot", k_shots="3"), 10, "k_shots must be a whole number, got '3'"),
    (PromptConfig(style="few_shot", k_shots=5), 4, "k_shots is 5 but the train split has only 4 problem"),
    (PromptConfig(shot_seed=-1), 10, "shot_seed must be between 0"),
])
def test_validation_names_the_bad_setting(cfg, pool_size, message):
    with pytest.raises(PromptError) as raised:
        validate_prompt_config(cfg, train_pool_size=pool_size)
    assert message in str(raised.value)


@pytest.mark.parametrize("cfg", [PromptConfig(), PromptConfig(style="zero_shot", preset="salam"),
                                 PromptConfig(style="few_shot", preset="lbt", k_shots=4, shot_seed=9)])
def test_validation_accepts_good_configs(cfg):
    validate_prompt_config(cfg, train_pool_size=4)


def test_config_from_run_json_rejects_unknown_keys():
    assert PromptConfig.from_dict({"style": "few_shot", "k_shots": 3}) == PromptConfig(style="few_shot", k_shots=3)
    with pytest.raises(PromptError, match="unknown prompt setting 'shots'"):
        PromptConfig.from_dict({"shots": 3})


def test_suggested_scorer_falls_back_to_errata_defaults_and_names_bad_formats():
    assert suggested_scorer("fair", "number") == "fair_numeric"
    assert suggested_scorer("fair", "math") == "math"
    with pytest.raises(PromptError, match="unknown answer format 'essay'"):
        suggested_scorer("errata", "essay")
