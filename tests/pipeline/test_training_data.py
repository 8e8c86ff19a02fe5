"""Training-data builders: the prompts and targets of each method, what they skip and why, the split, the files."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.exports import LEMA_INSTRUCTION, ApprovedItem, ExportError
from pipeline.seeds.salam_finetune import INSTRUCTION, render_output
from pipeline.training.data import (
    PreferencePair, TrainingDataError, TrainingExample, data_summary, dpo_pairs_from_items, dpo_pairs_from_scores,
    fair_student_examples, gsi_iteration_examples, lema_student_examples, qa_examples, read_jsonl,
    salam_assistant_examples, split_examples, write_jsonl,
)

BBQ = ProblemRecord("Age-3", "Who embraces change?", "B", choices=("The 24 year old", "Cannot answer"))
GSM = ProblemRecord("gsm-1", "Ducks lay 16 eggs; she eats 3. How many are left?", "13",
                    gold_rationale="16 - 3 = 13\n#### 13")
SVAMP = ProblemRecord("12", "Émile has 290 bananas in 2 groups. How big is each group?", "145")

BBQ_WRONG = AttemptRecord("Age-3", output="(A)", extracted="(A)", correct=False)
GSM_WRONG = AttemptRecord("gsm-1", output="16 + 3 = 19. The answer is 19.", extracted="19", correct=False)
SVAMP_WRONG = AttemptRecord("12", output="Answer:\n290 / 93 = 3.1", extracted="3.1", correct=False)
NO_ATTEMPT = AttemptRecord("12", output="", extracted=None, correct=False)  # the web side's LbT placeholder

SALAM_ITEM = ApprovedItem(BBQ, BBQ_WRONG, "salam", "gpt-4", {"reason": "r", "guideline": "g"}, render_output("r", "g"))
LEMA_ITEM = ApprovedItem(GSM, GSM_WRONG, "lema", "gpt-4o", {}, "Incorrect Step: 16 + 3.\nCorrect Solution:\n16 - 3 = 13.")
LBT_ITEM = ApprovedItem(SVAMP, NO_ATTEMPT, "lbt", "gpt-4o", {}, "290 / 2 = 145. The answer is 145.")
FAIR_RATIONALE = "290 / 2 = 145. Answer: 145"


def fair(teacher: str, text: str, **fields) -> ApprovedItem:
    return ApprovedItem(SVAMP, SVAMP_WRONG, "fair", teacher, fields, text)


def chat(user: str, assistant: str) -> tuple[dict, dict]:
    return ({"role": "user", "content": user}, {"role": "assistant", "content": assistant})


# --- SALAM -----------------------------------------------------------------------------------------

def test_salam_examples_pair_salams_prompt_with_the_reason_guideline_json():
    built = salam_assistant_examples([SALAM_ITEM])
    assert built.examples == [TrainingExample(
        chat("Who embraces change?\nOptions:\n(A) The 24 year old\n(B) Cannot answer\n"
             f"We get the answer (A) from the model while the true answer is (B). \n{INSTRUCTION}",
             '{"reason": "r", "guideline": "g"}'),
        "main", {"index": 0, "problem": "Age-3", "method": "salam", "teacher": "gpt-4"})]
    assert built.skipped == {}


def test_salam_examples_rewrite_edited_json_in_salams_layout():
    edited = replace(SALAM_ITEM, text='{\n  "guideline": "g",\n  "reason": "r"\n}')
    assert salam_assistant_examples([edited]).examples[0].messages[-1]["content"] == '{"reason": "r", "guideline": "g"}'


@pytest.mark.parametrize("item, message", [
    (replace(SALAM_ITEM, text="just prose"), "needs text that is a JSON"),
    (LEMA_ITEM, "salam_assistant_examples builds from salam feedback only"),
])
def test_salam_examples_refuse_what_salam_cannot_train_on(item, message):
    with pytest.raises(ExportError, match=message):
        salam_assistant_examples([item])


# --- LEMA ------------------------------------------------------------------------------------------

LEMA_USER = (f"{LEMA_INSTRUCTION}\n\nQuestion: Ducks lay 16 eggs; she eats 3. How many are left?\n"
             "Original Solution:\n16 + 3 = 19. The answer is 19.\n")
COT_POOL = [ProblemRecord(f"cot-{n}", f"What is {n} + {n}?", str(2 * n), gold_rationale=f"{n} + {n} = {2 * n}")
            for n in range(1, 5)] + [ProblemRecord("no-rationale", "What is 9 + 9?", "18")]


def test_lema_examples_pair_question_and_wrong_solution_with_the_correction():
    built = lema_student_examples([LEMA_ITEM])
    assert built.examples == [TrainingExample(chat(LEMA_USER, LEMA_ITEM.text), "main",
                                              {"index": 0, "problem": "gsm-1", "method": "lema", "teacher": "gpt-4o"})]


def test_chain_of_thought_examples_end_with_lemas_answer_sentence():
    built = lema_student_examples([LEMA_ITEM], cot_problems=[GSM], cot_ratio=1.0)
    assert built.examples[1] == TrainingExample(
        chat("Ducks lay 16 eggs; she eats 3. How many are left?", "16 - 3 = 13\nThe answer is 13"),  # "#### 13" replaced
        "cot", {"index": 0, "problem": "gsm-1"})


@pytest.mark.parametrize("corrections, ratio, cot, skipped", [
    (2, 0.0, 0, {}),
    (2, 1.0, 2, {}),  # equal numbers
    (2, 1.5, 3, {}),
    (3, 0.5, 2, {}),  # 1.5 rounds half up
    (2, 5.0, 4, {"chain-of-thought examples missing: too few problems with a gold rationale": 6}),  # 4 of 10 exist
])
def test_cot_ratio_sets_chain_of_thought_examples_per_correction(corrections, ratio, cot, skipped):
    built = lema_student_examples([LEMA_ITEM] * corrections, cot_problems=COT_POOL, cot_ratio=ratio)
    assert [example.part for example in built.examples] == ["main"] * corrections + ["cot"] * cot
    assert built.skipped == skipped
    assert "no-rationale" not in [example.source["problem"] for example in built.examples]


def test_the_chain_of_thought_draw_depends_on_the_seed_not_the_order():
    def drawn(pool, seed):
        built = lema_student_examples([LEMA_ITEM] * 2, cot_problems=pool, cot_ratio=1.0, seed=seed)
        return {example.source["problem"] for example in built.examples if example.part == "cot"}

    assert drawn(COT_POOL, 0) == drawn(COT_POOL[::-1], 0)
    assert len({frozenset(drawn(COT_POOL, seed)) for seed in range(10)}) > 1


def test_lema_examples_refuse_other_methods_and_bad_ratios():
    with pytest.raises(ExportError, match="builds from lema feedback only"):
        lema_student_examples([SALAM_ITEM])
    with pytest.raises(ValueError, match="cot_ratio must be a number from 0 to 100"):
        lema_student_examples([LEMA_ITEM], cot_ratio=-1)


# --- FAIR ------------------------------------------------------------------------------------------

FAIR_FEEDBACK_USER = ("Question: Émile has 290 bananas in 2 groups. How big is each group?\n\nA student answered:\n"
                      "Answer:\n290 / 93 = 3.1\n\nThis answer is wrong. Explain what went wrong in it and how to "
                      "reach the right answer.")


def test_fair_examples_have_a_feedback_part_and_an_accepted_rationale_part():
    built = fair_student_examples([fair("gpt", "Use the 2 groups.", rationale=FAIR_RATIONALE, peer_accepted=True)])
    source = {"index": 0, "problem": "12", "method": "fair", "teacher": "gpt"}
    assert built.examples == [
        TrainingExample(chat(FAIR_FEEDBACK_USER, "Use the 2 groups."), "feedback", source),
        TrainingExample(chat("Émile has 290 bananas in 2 groups. How big is each group?", FAIR_RATIONALE),
                        "rationale", source),
    ]


def test_fair_examples_drop_rejected_and_repeated_rationales():
    built = fair_student_examples([
        fair("gpt", "Use 2 groups.", rationale=FAIR_RATIONALE),  # no verdict yet: not rejected
        fair("gemini", "Not 93.", rationale="290 / 93 = 3.1", peer_accepted=False),
        fair("mistral", "Divide by 2.", rationale=FAIR_RATIONALE + "\n", peer_accepted=True),  # the same, once
        fair("llama", "Groups of 2."),  # feedback only
    ])
    assert [(example.part, example.source["teacher"]) for example in built.examples] == [
        ("feedback", "gpt"), ("rationale", "gpt"), ("feedback", "gemini"), ("feedback", "mistral"),
        ("feedback", "llama")]
    assert built.skipped == {"rationale rejected by peer review": 1, "duplicate rationale": 1}


def test_fair_feedback_needs_a_wrong_answer_to_show():
    built = fair_student_examples([replace(fair("gpt", "Use 2."), wrong=NO_ATTEMPT)])
    assert (built.examples, built.skipped) == ([], {"feedback without a wrong answer to show": 1})


# --- GSI -------------------------------------------------------------------------------------------

def attempt(problem: ProblemRecord, output: str, correct: bool, **kwargs) -> AttemptRecord:
    return AttemptRecord(problem.external_id, output, None, correct, **kwargs)


def test_gsi_keeps_every_correct_sample_once():
    pairs = [
        (GSM, attempt(GSM, "16 - 3 = 13. The answer is 13.", True)),
        (GSM, attempt(GSM, "16 + 3 = 19. The answer is 19.", False)),
        (GSM, attempt(GSM, "16 - 3 = 13. The answer is 13.\n", True, round=1, guidance="answer")),  # same text
        (GSM, attempt(GSM, "3 eaten: 13 left. The answer is 13.", True, sample_index=2)),
        (SVAMP, attempt(SVAMP, "16 - 3 = 13. The answer is 13.", True)),  # same text, another problem
    ]
    built = gsi_iteration_examples(pairs)
    assert [example.messages[-1]["content"] for example in built.examples] == [
        "16 - 3 = 13. The answer is 13.", "3 eaten: 13 left. The answer is 13.", "16 - 3 = 13. The answer is 13."]
    assert built.examples[1] == TrainingExample(
        chat("Ducks lay 16 eggs; she eats 3. How many are left?", "3 eaten: 13 left. The answer is 13."), "main",
        {"index": 3, "problem": "gsm-1", "round": 0, "sample_index": 2, "guidance": ""})
    assert built.skipped == {"wrong answer": 1, "duplicate sample": 1}


def test_gsi_refuses_an_attempt_paired_with_another_problem():
    with pytest.raises(ValueError, match="pair 0: the attempt answers '12', not problem 'gsm-1'"):
        gsi_iteration_examples([(GSM, attempt(SVAMP, "145", True))])


# --- plain Q->A ------------------------------------------------------------------------------------

@pytest.mark.parametrize("problem, rationale, target", [
    (BBQ, False, "(B)"),  # a letter is written as the student is asked to write it
    (GSM, False, "13"),
    (GSM, True, "16 - 3 = 13\nThe answer is 13"),
    (BBQ, True, "The answer is (B)"),  # no rationale: the answer sentence alone
])
def test_qa_examples_answer_with_the_gold(problem, rationale, target):
    built = qa_examples([problem], rationale=rationale)
    assert built.examples[0].messages[-1]["content"] == target
    assert built.examples[0].source == {"index": 0, "problem": problem.external_id}


def test_qa_examples_skip_problems_without_a_gold_answer():
    built = qa_examples([replace(SVAMP, gold_answer=""), SVAMP])
    assert ([example.source["index"] for example in built.examples], built.skipped) == ([1], {"no gold answer": 1})


# --- DPO -------------------------------------------------------------------------------------------

def test_dpo_pairs_prefer_the_correction_over_the_wrong_output_and_skip_lbt():
    no_output = replace(fair("gpt", "Use 2."), wrong=NO_ATTEMPT)
    built = dpo_pairs_from_items([LBT_ITEM, LEMA_ITEM, no_output])
    assert built.examples == [PreferencePair(
        "Ducks lay 16 eggs; she eats 3. How many are left?", LEMA_ITEM.text, "16 + 3 = 19. The answer is 19.",
        {"index": 1, "problem": "gsm-1", "method": "lema", "teacher": "gpt-4o"})]
    assert built.skipped == {"LbT rationale: no wrong answer to reject": 1, "no wrong answer to reject": 1}


def test_dpo_pairs_need_approved_text_to_prefer():
    built = dpo_pairs_from_items([replace(LEMA_ITEM, text=" ")])
    assert (built.examples, built.skipped) == ([], {"no approved text to prefer": 1})


def test_dpo_pairs_refuse_salam_feedback():
    with pytest.raises(ExportError, match="the dpo format holds"):
        dpo_pairs_from_items([SALAM_ITEM])


SCORED = [(GSM, "r1", 1), (GSM, "r2", 5), (GSM, "r3", 5), (GSM, "r4", 1),
          (SVAMP, "s1", 3), (SVAMP, "s2", 3), (BBQ, "b1", 4)]


def test_score_pairs_take_the_best_over_the_worst_first_seen_on_ties():
    built = dpo_pairs_from_scores(SCORED)
    assert built.examples == [PreferencePair(
        "Ducks lay 16 eggs; she eats 3. How many are left?", "r2", "r1",
        {"problem": "gsm-1", "chosen_index": 1, "rejected_index": 0, "chosen_score": 5.0, "rejected_score": 1.0})]
    assert built.skipped == {"problem whose scores differ by no more than min_margin": 2}  # SVAMP ties, BBQ alone


@pytest.mark.parametrize("min_margin, pairs", [(0.0, 1), (3.9, 1), (4.0, 0)])
def test_score_pairs_need_a_margin_above_min_margin(min_margin, pairs):
    assert len(dpo_pairs_from_scores(SCORED, min_margin=min_margin).examples) == pairs


def test_score_pairs_leave_out_empty_rationales():
    built = dpo_pairs_from_scores([(GSM, "", 5), (GSM, "r2", 3), (GSM, "r3", 1)])
    assert [(pair.chosen, pair.rejected) for pair in built.examples] == [("r2", "r3")]


def test_score_pairs_refuse_a_score_that_is_not_a_number():
    with pytest.raises(ValueError, match="row 0: the score must be a finite number"):
        dpo_pairs_from_scores([(GSM, "r1", True)])


# --- split -----------------------------------------------------------------------------------------

EXAMPLES = [TrainingExample(chat(f"q{n}", f"a{n}")) for n in range(10)]


@pytest.mark.parametrize("count, share, validation", [
    (10, 0.1, 1), (10, 0.25, 3), (10, 0.0, 0), (1, 0.5, 0), (2, 0.01, 1), (3, 0.99, 2), (0, 0.5, 0),
])
def test_split_sizes(count, share, validation):
    train, held_out = split_examples(EXAMPLES[:count], validation_share=share)
    assert (len(train), len(held_out)) == (count - validation, validation)


def test_split_is_the_same_in_any_order_and_keeps_the_input_order():
    train, validation = split_examples(EXAMPLES, validation_share=0.3, seed=4)
    again_train, again_validation = split_examples(EXAMPLES[::-1], validation_share=0.3, seed=4)
    assert (set(map(id, again_train)), set(map(id, again_validation))) == (set(map(id, train)), set(map(id, validation)))
    assert train == [example for example in EXAMPLES if example in train]


def test_split_changes_with_the_seed():
    assert len({tuple(map(id, split_examples(EXAMPLES, 0.2, seed)[1])) for seed in range(5)}) > 1


def test_split_refuses_a_share_of_one():
    with pytest.raises(ValueError, match="validation_share must be a number from 0 up to"):
        split_examples(EXAMPLES, validation_share=1.0)


# --- files -----------------------------------------------------------------------------------------

def test_jsonl_round_trip_keeps_examples_and_unicode(tmp_path):
    examples = [TrainingExample(({"role": "system", "content": "Be brief."}, *chat("Émile?", "145 — yes")),
                                "rationale", {"index": 3}), TrainingExample(chat("q", "a"))]
    path = tmp_path / "train.jsonl"
    write_jsonl(examples, path)
    assert path.read_text(encoding="utf-8").splitlines()[1] == (
        '{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], '
        '"part": "main", "source": {}}')
    assert "Émile" in path.read_text(encoding="utf-8")
    assert read_jsonl(path) == examples


def test_jsonl_round_trip_keeps_preference_pairs(tmp_path):
    pairs = [PreferencePair("q", "good", "bad", {"problem": "12"})]
    write_jsonl(pairs, tmp_path / "dpo.jsonl")
    assert read_jsonl(tmp_path / "dpo.jsonl") == pairs


def test_read_jsonl_skips_blank_lines(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text(json.dumps(TrainingExample(chat("q", "a")).to_json()) + "\n\n")
    assert len(read_jsonl(path)) == 1


GOOD = json.dumps({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]})
GOOD_PAIR = json.dumps({"prompt": "q", "chosen": "a", "rejected": "b"})


@pytest.mark.parametrize("line, reason", [
    ("{not json", "not JSON (Expecting property name enclosed in double quotes at column 2)"),
    ("[1, 2]", "a record must be a JSON object, got list"),
    ('{"part": "main"}', "the record has no 'messages'"),
    ('{"messages": [{"role": "user", "content": "q"}]}',
     "messages must be a list of at least two messages (a prompt and the target)"),
    ('{"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}',
     "the last message must be the assistant's: it is what the model learns"),
    ('{"messages": [{"role": "tool", "content": "q"}, {"role": "assistant", "content": "a"}]}',
     "message 1 has role 'tool'; known: system, user, assistant"),
    ('{"messages": [{"role": "user"}, {"role": "assistant", "content": "a"}]}',
     "message 1 must be an object with exactly role and content"),
    ('{"messages": [{"role": "user", "content": 1}, {"role": "assistant", "content": "a"}]}',
     "message 1 content must be text"),
    (GOOD[:-1] + ', "part": "answer"}', "part must be one of main, feedback, rationale, cot, got 'answer'"),
    (GOOD[:-1] + ', "weight": 2}', "unknown key 'weight'; known: messages, part, source"),
    (GOOD[:-1] + ', "source": []}', "source must be an object, got []"),
    ('{"prompt": "q", "chosen": "", "rejected": "b"}', "chosen must be non-empty text, got ''"),
    ('{"prompt": "q", "chosen": "a", "rejected": "b", "part": "main"}',
     "unknown key 'part'; known: prompt, chosen, rejected, source"),
])
def test_read_jsonl_names_the_line_of_a_malformed_record(tmp_path, line, reason):
    path = tmp_path / "train.jsonl"
    first = GOOD_PAIR if '"prompt"' in line else GOOD  # a file holds one kind of record
    path.write_text(f"{first}\n{line}\n")
    with pytest.raises(TrainingDataError) as caught:
        read_jsonl(path)
    assert str(caught.value) == f"{path}, line 2: {reason}"


def test_read_jsonl_refuses_a_file_mixing_examples_and_pairs(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text(f"{GOOD}\n{GOOD_PAIR}\n")
    with pytest.raises(TrainingDataError, match="line 2: a file holds chat examples or preference pairs, not both"):
        read_jsonl(path)


def test_read_jsonl_refuses_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + '{"x": "é"}'.encode("latin-1") + b"\n")
    with pytest.raises(TrainingDataError, match="line 2: not UTF-8 text"):
        read_jsonl(path)


# --- summary ---------------------------------------------------------------------------------------

def test_summary_counts_examples_per_split_and_part():
    main, cot = TrainingExample(chat("q", "a")), TrainingExample(chat("q", "a"), "cot")
    assert data_summary([main, main, cot], [cot]) == {
        "train": 3, "validation": 1, "parts": {"main": {"train": 2, "validation": 0}, "cot": {"train": 1, "validation": 1}}}
    assert data_summary([PreferencePair("q", "a", "b")], []) == {
        "train": 1, "validation": 0, "parts": {"main": {"train": 1, "validation": 0}}}
