"""pipeline.chat: what the assistant is sent (bounded history, the mistake as context) and SALAM's explain request."""

from __future__ import annotations

import json

from pipeline.chat import (
    SYSTEM_PROMPT, CitedCase, Mistake, chat_messages, explain_messages, explain_prompt, parse_explanation, title_for,
)
from pipeline.exams.retrieval import PastCase
from pipeline.seeds.salam_finetune import parse_salam_input


def turns(*pairs: tuple[str, str]) -> list[dict]:
    return [{"id": n, "role": role, "content": content} for n, (role, content) in enumerate(pairs)]


def test_history_is_cut_at_the_last_n_user_turns():
    history = turns(("user", "q1"), ("assistant", "a1"), ("user", "q2"), ("assistant", "a2"), ("user", "q3"))
    sent = chat_messages(history, max_turns=2)
    assert sent[0] == {"role": "system", "content": SYSTEM_PROMPT}
    assert [m["content"] for m in sent[1:]] == ["q2", "a2", "q3"]


def test_empty_answers_are_left_out():
    # An answer stopped before its first word, then the question asked again.
    history = turns(("user", "q1"), ("assistant", ""), ("user", "q1 again"))
    assert [m["content"] for m in chat_messages(history, max_turns=5)[1:]] == ["q1", "q1 again"]


def test_the_mistake_goes_in_the_system_prompt():
    mistake = Mistake(question="What is 15 + 17?", answer="22", gold="32", work="15 + 17 = 22")
    system = chat_messages([], max_turns=3, mistake=mistake)[0]["content"]
    assert system.startswith(SYSTEM_PROMPT)
    assert "Question:\nWhat is 15 + 17?" in system and "The work shown:\n15 + 17 = 22" in system
    assert "The answer given: 22" in system and "The correct answer: 32" in system


def test_a_mistake_round_trips_through_a_sessions_context():
    mistake = Mistake(question="q", answer="a", gold="g", work="w")
    assert Mistake.from_context({**mistake.as_context(), "kind": "mistake", "attempt_id": 3}) == mistake
    assert Mistake.from_context({}) is None


def test_explain_asks_in_salams_own_words():
    mistake = Mistake(question="Which is heavier?\nOptions:\n(A) a kilo of lead\n(B) neither", answer="(A)", gold="(B)")
    prompt = explain_prompt(mistake)
    assert parse_salam_input(prompt) == (mistake.question, "(A)", "(B)")  # exactly SALAM's training prompt
    assert explain_messages(mistake) == [{"role": "user", "content": prompt}]


def test_explain_without_a_gold_answer_leaves_it_out():
    prompt = explain_prompt(Mistake(question="2 + 2?", answer="5"))
    assert "We get the answer 5 from the model. \n" in prompt and "true answer is" not in prompt


def test_similar_mistakes_are_numbered_sources_before_the_request():
    case = PastCase(case_id=7, question="3 + 4?", answer="8", gold="7", correct=False)
    messages = explain_messages(Mistake(question="2 + 2?", answer="5"), [CitedCase(case, "Count again.", 0.93)])
    assert messages[0]["role"] == "system"
    assert "[1] 3 + 4?\nPrevious wrong answer is 8. The correct answer is 7.\nApproved feedback: Count again." in messages[0]["content"]
    assert messages[1]["role"] == "user"


def test_the_explanation_parses_or_keeps_the_raw_words():
    good = parse_explanation("Sure:\n" + json.dumps({"reason": "added wrong", "guideline": "check sums"}))
    assert (good.ok, good.reason, good.guideline) == (True, "added wrong", "check sums")
    bad = parse_explanation("You forgot to carry.")
    assert not bad.ok and bad.raw == "You forgot to carry."


def test_titles_come_from_the_first_line():
    assert title_for("  Why   is this\nwrong?") == "Why is this"
    assert title_for("x" * 100) == "x" * 59 + "…"
    assert title_for("") == ""
