"""GSI guided resampling: validation, who needs guidance, kinds per round, prefixes, guided messages, a whole loop."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.guidance import (
    CONTINUATION_PARAMS, GuidanceConfig, GuidanceError, continued_output, guidance_kind_for_round, guided_messages,
    is_continuation, latest_wrong, problems_needing_guidance, rationale_prefix, should_stop, teacher_help_messages,
    validate_guidance,
)
from pipeline.prompts import PromptConfig, student_messages
from pipeline.scoring import score

GSI = GuidanceConfig(min_correct=2, max_resample=3, kinds=("answer", "rationale", "state_reset", "teacher_help"),
                     state_reset_fraction=0.4)
PROBLEM = ProblemRecord(
    external_id="gsm8k_0", question="Sam has 4 boxes of 5 pens and gives away 3 pens. How many are left?",
    gold_answer="17",
    gold_rationale="Sam has 4 * 5 = 20 pens.\nHe gives away 3, so 20 - 3 = 17 remain.\nThe answer is 17",
)
CHOICE = ProblemRecord(external_id="aqua_1", question="Which is prime?", gold_answer="C", choices=("4", "6", "7"),
                       gold_rationale="4 and 6 are even; 7 has no divisors but 1 and itself.")


def attempt(problem_id: str, correct: bool, *, round: int = 0, sample: int = 0, guidance: str = "",
            output: str = "") -> AttemptRecord:
    return AttemptRecord(problem_external_id=problem_id, output=output or f"out {problem_id} {round} {sample}",
                         extracted=None, correct=correct, sample_index=sample, round=round, guidance=guidance)


def base(problem: ProblemRecord) -> list[dict]:
    return student_messages(problem, PromptConfig(style="cot", preset="gsi"))


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg,message", [
    (GuidanceConfig(min_correct=5, max_resample=1, kinds=("answer",)),
     "min_correct (5) cannot exceed the samples per problem (4)"),
    (GuidanceConfig(min_correct=-1), "min_correct must be at least 0, got -1"),
    (GuidanceConfig(min_correct=1, max_resample=2.5, kinds=("answer",)), "max_resample must be a whole number"),
    (GuidanceConfig(min_correct=1, max_resample=1, kinds=("answer",), samples_per_round=0),
     "samples_per_round must be at least 1"),
    (GuidanceConfig(max_resample=2, kinds=("answer",)), "set min_correct to at least 1"),
    (GuidanceConfig(min_correct=2), "min_correct needs max_resample of at least 1"),
    (GuidanceConfig(min_correct=2, max_resample=2),
     "max_resample needs at least one guidance kind; choose from answer, rationale, state_reset, teacher_help"),
    (GuidanceConfig(min_correct=2, max_resample=2, kinds=("hint",)), "unknown guidance kind 'hint'"),
    (GuidanceConfig(min_correct=2, max_resample=2, kinds=("answer", "answer")), "listed once"),
    (GuidanceConfig(min_correct=2, max_resample=2, kinds=("teacher_help",)), "teacher_help needs a teacher"),
    (GuidanceConfig(min_correct=2, max_resample=2, kinds=("state_reset",)), "state_reset needs exactly one of"),
    (GuidanceConfig(min_correct=2, max_resample=2, kinds=("state_reset",), state_reset_lines=2,
                    state_reset_fraction=0.4), "state_reset needs exactly one of"),
    (GuidanceConfig(min_correct=2, max_resample=2, kinds=("state_reset",), state_reset_fraction=0.5),
     "state_reset_fraction must be one of 0.2, 0.4, 0.6, 0.8, got 0.5"),
    (GuidanceConfig(min_correct=2, max_resample=2, kinds=("state_reset",), state_reset_fraction="0.4"),
     "state_reset_fraction must be a number"),
    (GuidanceConfig(min_correct=2, max_resample=2, kinds=("answer",), state_reset_lines=3),
     "only used by the state_reset kind"),
])
def test_validation_names_the_bad_setting(cfg, message):
    with pytest.raises(GuidanceError) as raised:
        validate_guidance(cfg, samples_per_problem=4)
    assert message in str(raised.value)


@pytest.mark.parametrize("cfg", [
    GuidanceConfig(),  # GSI off
    GSI,
    GuidanceConfig(min_correct=4, max_resample=8, kinds=("state_reset",), state_reset_lines=2, samples_per_round=4),
])
def test_validation_accepts_good_configs(cfg):
    validate_guidance(cfg, samples_per_problem=4, has_teacher=True)


def test_config_from_run_json_takes_a_list_of_kinds_and_rejects_unknown_keys():
    cfg = GuidanceConfig.from_dict({"min_correct": 2, "max_resample": 3, "kinds": ["answer", "state_reset"]})
    assert cfg.kinds == ("answer", "state_reset")
    with pytest.raises(GuidanceError, match="unknown GSI setting 'resample'"):
        GuidanceConfig.from_dict({"resample": 3})


# --- who needs guidance, which kind, when to stop ---------------------------------------------


def test_problems_needing_guidance_counts_right_answers_over_every_round():
    attempts = [
        attempt("a", True), attempt("a", True, sample=1),  # enough in the plain pass
        attempt("b", True), attempt("b", False, sample=1), attempt("b", True, round=1, guidance="answer"),
        attempt("c", False), attempt("c", False, sample=1), attempt("c", True, round=1, guidance="answer"),
        attempt("d", False), attempt("d", False, sample=1),
    ]
    assert problems_needing_guidance(attempts, GSI) == ["c", "d"]
    assert problems_needing_guidance(attempts, GuidanceConfig()) == []  # GSI off


def test_rounds_cycle_through_the_kinds_in_order():
    assert [guidance_kind_for_round(GSI, r) for r in range(0, 7)] == [
        "", "answer", "rationale", "state_reset", "teacher_help", "answer", "rationale"]
    with pytest.raises(GuidanceError, match="round 1"):
        guidance_kind_for_round(GuidanceConfig(), 1)


@pytest.mark.parametrize("right,round,stop", [
    (2, 0, True),  # enough right answers
    (1, 0, False),
    (1, 2, False),
    (1, 3, True),  # max_resample reached
    (0, 4, True),
])
def test_should_stop_when_enough_are_right_or_rounds_run_out(right, round, stop):
    attempts = [attempt("p", i < right, sample=i) for i in range(4)]
    assert should_stop(attempts, "p", GSI, round) is stop


def test_latest_wrong_is_the_last_round_and_sample():
    attempts = [attempt("p", False), attempt("p", False, round=2, sample=1, guidance="rationale"),
                attempt("p", True, round=3, guidance="state_reset"), attempt("q", False, round=5)]
    assert latest_wrong(attempts, "p") == attempts[1]
    assert latest_wrong(attempts, "nobody") is None


# --- state-reset prefixes ---------------------------------------------------------------------

TEN_TOKENS = "a1 a2 a3\nb1 b2  b3 b4\nc1 c2 c3"


@pytest.mark.parametrize("kwargs,prefix", [
    ({"lines": 1}, "a1 a2 a3"),
    ({"lines": 2}, "a1 a2 a3\nb1 b2  b3 b4"),
    ({"lines": 9}, "a1 a2 a3\nb1 b2  b3 b4"),  # never the whole rationale: the last line is left to the student
    ({"fraction": 0.2}, "a1 a2"),  # 2 of 10 tokens
    ({"fraction": 0.4}, "a1 a2 a3\nb1"),  # 4 of 10; the line break is kept
    ({"fraction": 0.6}, "a1 a2 a3\nb1 b2  b3"),  # 6 of 10; the double space too
    ({"fraction": 0.8}, "a1 a2 a3\nb1 b2  b3 b4\nc1"),  # 8 of 10
])
def test_rationale_prefix_by_lines_and_by_share_of_tokens(kwargs, prefix):
    assert rationale_prefix(TEN_TOKENS, **kwargs) == prefix


@pytest.mark.parametrize("fraction,count", [(0.2, 1), (0.4, 2), (0.6, 4), (0.8, 5)])
def test_rationale_prefix_rounds_the_token_count_down(fraction, count):
    seven = "t1 t2 t3 t4 t5 t6 t7"  # 7 * 0.2 = 1.4, 7 * 0.4 = 2.8, 7 * 0.6 = 4.2, 7 * 0.8 = 5.6
    assert rationale_prefix(seven, fraction=fraction).split() == seven.split()[:count]


def test_rationale_prefix_needs_exactly_one_way_to_cut():
    with pytest.raises(GuidanceError, match="exactly one"):
        rationale_prefix(TEN_TOKENS)
    with pytest.raises(GuidanceError, match="exactly one"):
        rationale_prefix(TEN_TOKENS, lines=1, fraction=0.2)


# --- guided messages --------------------------------------------------------------------------


def test_state_reset_ends_with_the_rationale_prefix_as_the_assistants_partial_reply():
    cfg = replace(GSI, state_reset_fraction=0.0, state_reset_lines=1)
    messages = guided_messages(PROBLEM, base(PROBLEM), "state_reset", cfg)
    assert messages[:-1] == base(PROBLEM)
    assert messages[-1] == {"role": "assistant", "content": "Sam has 4 * 5 = 20 pens."}
    assert is_continuation(messages) and CONTINUATION_PARAMS["continue_final_message"] is True
    assert continued_output(messages, "\nSo 17 remain.\nThe answer is 17") == (
        "Sam has 4 * 5 = 20 pens.\nSo 17 remain.\nThe answer is 17")
    assert continued_output(base(PROBLEM), "plain") == "plain"


def test_state_reset_never_hands_over_the_closing_answer_line():
    cfg = replace(GSI, state_reset_fraction=0.0, state_reset_lines=5)
    prefix = guided_messages(PROBLEM, base(PROBLEM), "state_reset", cfg)[-1]["content"]
    # the rationale body is two lines once "The answer is 17" is dropped; the last of them stays unsaid
    assert prefix == "Sam has 4 * 5 = 20 pens."


def test_state_reset_by_fraction_cuts_the_rationale_body():
    prefix = guided_messages(PROBLEM, base(PROBLEM), "state_reset", GSI)[-1]["content"]
    assert prefix == "Sam has 4 * 5 = 20"  # the body has 19 tokens; 0.4 * 19 = 7.6, so 7


def test_answer_driven_gives_the_gold_answer_and_still_asks_for_the_final_line():
    messages = guided_messages(PROBLEM, base(PROBLEM), "answer", GSI, preset="gsi")
    hint = messages[-1]["content"]
    assert hint.startswith(base(PROBLEM)[-1]["content"])
    assert "the correct final answer is 17" in hint
    assert "The answer is X" in hint
    assert len(messages) == len(base(PROBLEM))


def test_answer_driven_names_the_option_for_multiple_choice():
    hint = guided_messages(CHOICE, base(CHOICE), "answer", GSI)[-1]["content"]
    assert "the correct final answer is (C) 7" in hint


def test_rationale_driven_gives_the_gold_rationale():
    hint = guided_messages(PROBLEM, base(PROBLEM), "rationale", GSI)[-1]["content"]
    assert PROBLEM.gold_rationale in hint
    assert "in your own words" in hint


@pytest.mark.parametrize("kind", ["rationale", "state_reset"])
def test_rationale_kinds_need_a_gold_rationale(kind):
    bare = replace(PROBLEM, gold_rationale="")
    with pytest.raises(GuidanceError, match="gold rationale; problem 'gsm8k_0' has none"):
        guided_messages(bare, base(bare), kind, GSI)


def test_teacher_help_shows_the_wrong_answer_and_the_correction_then_asks_for_a_revision():
    wrong = attempt(PROBLEM.external_id, False, output="4 + 5 = 9, 9 - 3 = 6. The answer is 6")
    messages = guided_messages(PROBLEM, base(PROBLEM), "teacher_help", GSI, previous_wrong=wrong,
                               teacher_correction="Four boxes of five pens is 4 * 5, not 4 + 5.")
    assert messages[:-2] == base(PROBLEM)
    assert messages[-2] == {"role": "assistant", "content": wrong.output}
    assert messages[-1]["role"] == "user"
    assert "Four boxes of five pens is 4 * 5, not 4 + 5." in messages[-1]["content"]
    assert "corrected solution" in messages[-1]["content"]
    with pytest.raises(GuidanceError, match="previous wrong attempt and the teacher's correction"):
        guided_messages(PROBLEM, base(PROBLEM), "teacher_help", GSI, previous_wrong=wrong)


def test_the_teacher_sees_the_problem_the_wrong_answer_and_the_reference_but_is_told_to_explain():
    wrong = attempt(PROBLEM.external_id, False, output="4 + 5 = 9, 9 - 3 = 6. The answer is 6")
    messages = teacher_help_messages(PROBLEM, wrong)
    request = messages[-1]["content"]
    assert messages[0]["role"] == "system" and messages[-1]["role"] == "user"
    assert PROBLEM.question in request and wrong.output in request
    assert "Reference answer (for you, the teacher): 17" in request and PROBLEM.gold_rationale in request
    assert "Do not simply state the correct final answer" in request


def test_guided_messages_leave_the_base_messages_untouched_and_refuse_unknown_kinds():
    messages = base(PROBLEM)
    before = [dict(m) for m in messages]
    guided_messages(PROBLEM, messages, "answer", GSI)
    assert messages == before
    with pytest.raises(GuidanceError, match="unknown guidance kind 'nudge'"):
        guided_messages(PROBLEM, messages, "nudge", GSI)
    with pytest.raises(GuidanceError, match="must end with the user's question"):
        guided_messages(PROBLEM, messages + [{"role": "assistant", "content": "x"}], "answer", GSI)


# --- a whole GSI loop with a fake student -----------------------------------------------------


def numbered(i: int) -> ProblemRecord:
    return ProblemRecord(external_id=f"p{i}", question=f"What is {i} times 3?", gold_answer=str(3 * i),
                         gold_rationale=f"We multiply {i} by 3.\n{i} * 3 = {3 * i}\nThe answer is {3 * i}")


def fake_student(problem: ProblemRecord, messages: list[dict]) -> str:
    """Always right on p1 and p2; right on p3 only when told the answer or restarted from the gold rationale."""
    guided_well = "correct final answer" in messages[-1]["content"] or is_continuation(messages)
    if problem.external_id in ("p1", "p2") or (problem.external_id == "p3" and guided_well):
        return f"Compute it.\nThe answer is {problem.gold_answer}"
    return "I guess.\nThe answer is 999"


def run_gsi(problems: list[ProblemRecord], cfg: GuidanceConfig, samples: int,
            teacher_calls: list) -> list[AttemptRecord]:
    """What a gather run does with the guidance module: a plain pass, then guided rounds until should_stop."""
    attempts: list[AttemptRecord] = []

    def record(problem, messages, sample, round, kind):
        output = continued_output(messages, fake_student(problem, messages))
        result = score("numeric", output, problem.gold_answer)
        attempts.append(AttemptRecord(problem.external_id, output, result.extracted, result.correct,
                                      sample_index=sample, round=round, guidance=kind))

    for problem in problems:
        for sample in range(samples):
            record(problem, base(problem), sample, 0, "")
    by_id = {p.external_id: p for p in problems}
    active, round = problems_needing_guidance(attempts, cfg), 0
    while active := [pid for pid in active if not should_stop(attempts, pid, cfg, round)]:
        round += 1
        kind = guidance_kind_for_round(cfg, round)
        for pid in active:
            wrong = latest_wrong(attempts, pid) if kind == "teacher_help" else None
            correction = None
            if wrong is not None:
                teacher_calls.append((pid, round, teacher_help_messages(by_id[pid], wrong)))
                correction = "Multiply, do not guess."
            messages = guided_messages(by_id[pid], base(by_id[pid]), kind, cfg, previous_wrong=wrong,
                                       teacher_correction=correction)
            for sample in range(cfg.samples_per_round):
                record(by_id[pid], messages, sample, round, kind)
    return attempts


def test_a_gsi_loop_guides_only_the_weak_problems_and_stops_at_max_resample():
    cfg = GuidanceConfig(min_correct=2, max_resample=3, kinds=("answer", "state_reset", "teacher_help"),
                         state_reset_lines=1)
    validate_guidance(cfg, samples_per_problem=2, has_teacher=True)
    teacher_calls: list = []
    attempts = run_gsi([numbered(i) for i in range(1, 5)], cfg, samples=2, teacher_calls=teacher_calls)

    rounds = {pid: sorted({(a.round, a.guidance) for a in attempts if a.problem_external_id == pid})
              for pid in ("p1", "p2", "p3", "p4")}
    assert rounds["p1"] == rounds["p2"] == [(0, "")]  # right twice in the plain pass: never guided
    # p3 is right when told the answer (round 1) and from the reset state (round 2): two right, it stops
    assert rounds["p3"] == [(0, ""), (1, "answer"), (2, "state_reset")]
    # p4 never gets it: every kind in turn until max_resample
    assert rounds["p4"] == [(0, ""), (1, "answer"), (2, "state_reset"), (3, "teacher_help")]
    assert [a.correct for a in attempts if a.problem_external_id == "p3"] == [False, False, True, True]
    assert not any(a.correct for a in attempts if a.problem_external_id == "p4")
    # state-reset attempts are scored on the prefix plus the continuation
    reset = next(a for a in attempts if a.problem_external_id == "p3" and a.guidance == "state_reset")
    assert reset.output.startswith("We multiply 3 by 3.")
    # the teacher was asked once, about p4's latest wrong answer
    assert [(pid, rnd) for pid, rnd, _ in teacher_calls] == [("p4", 3)]
    assert "I guess." in teacher_calls[0][2][-1]["content"]
    # one attempt per (problem, sample, round), as the gather run's unique key demands
    keys = [(a.problem_external_id, a.sample_index, a.round) for a in attempts]
    assert len(keys) == len(set(keys)) == 8 + 2 + 3
    assert problems_needing_guidance(attempts, cfg) == ["p4"]
