"""Teacher prompt templates: the defaults validate, edited ones are checked, rendering fills or refuses clearly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from pipeline.teaching import (
    DEFAULT_TEMPLATES, METHODS, TEMPLATE_KINDS, PromptTemplate, TemplateError, render, template_from_text,
    validate_template,
)
from pipeline.teaching.templates import template_fields

EXPECTED_NAMES = {"salam_feedback", "lema_correction", "lema_correction_hinted", "fair_feedback", "fair_rationale",
                  "fair_peer_review", "lbt_rationale"}


def test_there_is_a_default_template_of_every_kind():
    assert set(DEFAULT_TEMPLATES) == set(TEMPLATE_KINDS) == EXPECTED_NAMES
    assert METHODS == ("salam", "lema", "fair", "gsi", "lbt")


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_every_default_template_validates_and_declares_what_it_uses(name):
    template = DEFAULT_TEMPLATES[name]
    validate_template(template)
    assert template.name == name
    assert template.method == TEMPLATE_KINDS[name].method
    assert set(template.placeholders) == set(template_fields(template.system) + template_fields(template.user))


def test_a_template_is_plain_strings_that_format_fills():
    template = DEFAULT_TEMPLATES["fair_rationale"]
    assert isinstance(template.user, str)
    assert template.user.format(question="Q?") == render(template, question="Q?")[-1]["content"]


def test_render_fills_every_placeholder_and_keeps_literal_braces():
    messages = render(DEFAULT_TEMPLATES["salam_feedback"], question="What is 2+2?", student_solution="5",
                      student_answer="5")
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "What is 2+2?" in user and "\n5\n" in user
    assert '{"reason": ' in user  # written {{ }} in the template, one brace after rendering
    assert "{question}" not in user and "{student_solution}" not in user


def test_values_with_braces_are_not_formatted_again():
    messages = render(DEFAULT_TEMPLATES["fair_rationale"], question="Simplify {x} and {{y}}")
    assert "Simplify {x} and {{y}}" in messages[-1]["content"]


def test_an_empty_system_text_gives_only_the_user_message():
    template = template_from_text("fair_rationale", "", "Solve: {question}")
    assert render(template, question="1+1") == [{"role": "user", "content": "Solve: 1+1"}]


@pytest.mark.parametrize("values,message", [
    ({}, "missing value for placeholder {question} in template 'fair_rationale'"),
    ({"question": "Q", "answer": "4"}, "unknown value 'answer' for template 'fair_rationale'"),
    # gold_answer is a known word elsewhere, but not for a rationale the teacher writes on its own.
    ({"question": "Q", "gold_answer": "4"}, "unknown value 'gold_answer'"),
    ({"question": None}, "value 'question' for template 'fair_rationale' must be text, got NoneType"),
])
def test_render_refuses_missing_and_unknown_values_by_name(values, message):
    with pytest.raises(TemplateError, match=message.replace("{", r"\{").replace("}", r"\}")):
        render(DEFAULT_TEMPLATES["fair_rationale"], **values)


def test_an_unused_known_value_is_fine():
    # An edited template may drop a placeholder; the builder still passes every value it has.
    template = template_from_text("salam_feedback", "", "Q: {question}\nA: {student_answer}")
    messages = render(template, question="Q1", student_solution="long text", student_answer="(A)")
    assert messages == [{"role": "user", "content": "Q: Q1\nA: (A)"}]


@pytest.mark.parametrize("name,user,message", [
    ("salam_feedback", "{question} {student_solution} {answer_key}",
     "unknown placeholder {answer_key} in template 'salam_feedback' (method salam); known: "),
    ("salam_feedback", "{question} {student_solution} the answer is {gold_answer}",
     "placeholder {gold_answer} is not allowed in template 'salam_feedback': the SALAM feedback prompt must not "
     "reveal the true answer"),
    ("fair_rationale", "Solve {question} for {student}", "unknown placeholder {student} in template"),
    # A researcher pasting a JSON example with single braces: the message says how to write one.
    ("salam_feedback", '{question} {student_solution} {"reason": "..."}', "must be a plain name"),
    ("salam_feedback", "{question} {student_solution} {", "write {{ and }} for a literal brace"),
    ("salam_feedback", "{question} {student_solution} }", "write {{ and }} for a literal brace"),
    ("fair_rationale", "{question} {}", "an empty placeholder {} needs a name"),
    ("fair_rationale", "{question} {0}", "must be a plain name"),
    ("fair_rationale", "{question.upper}", "must be a plain name"),
    ("fair_rationale", "{question!r}", "may not have a format spec or conversion"),
    ("fair_rationale", "{question:>40}", "may not have a format spec or conversion"),
    ("fair_rationale", "Solve it.", "must use {question}"),
    ("fair_peer_review", "{question}", "must use {rationale}"),
    ("salam_feedback", "{question}", "must use {student_solution} or {student_answer}"),
    ("lema_correction_hinted", "{question} {student_steps}", "must use {gold_answer}"),
    ("fair_rationale", "   ", "the user text is empty"),
    ("salam_study", "{question}", "unknown template 'salam_study'; known templates: salam_feedback"),
])
def test_an_edited_template_is_refused_with_a_message_naming_the_problem(name, user, message):
    with pytest.raises(TemplateError) as refused:
        template_from_text(name, "", user)
    assert message in str(refused.value)


def test_a_placeholder_in_the_system_text_is_checked_too():
    with pytest.raises(TemplateError, match=r"unknown placeholder \{teacher\}"):
        template_from_text("fair_rationale", "You are {teacher}.", "{question}")


@pytest.mark.parametrize("change,message", [
    ({"method": "lema"}, "template 'fair_rationale' belongs to method 'fair', not 'lema'"),
    ({"placeholders": ("question", "rationale")}, "template 'fair_rationale' lists unknown placeholder {rationale}"),
    ({"system": None}, "system and user must be text"),
])
def test_a_stored_template_record_must_be_consistent(change, message):
    with pytest.raises(TemplateError) as refused:
        validate_template(replace(DEFAULT_TEMPLATES["fair_rationale"], **change))
    assert message in str(refused.value)


def test_the_declared_list_may_differ_from_the_text():
    # The web app keeps the default's placeholder list for an edited text; the texts decide.
    edited = replace(DEFAULT_TEMPLATES["salam_feedback"], user="{question}\nChosen: {student_answer}")
    validate_template(edited)
    assert render(edited, question="Q", student_answer="(A)")[-1]["content"] == "Q\nChosen: (A)"
    with pytest.raises(TemplateError, match=r"missing value for placeholder \{student_answer\}"):
        render(edited, question="Q", student_solution="long")


def test_a_saved_edit_with_an_unknown_placeholder_is_refused_by_name():
    # As the web app checks an edit before storing it as a new version.
    edited = replace(DEFAULT_TEMPLATES["lema_correction"], user="{question}\n{student_steps}\nHint: {true_answer}")
    with pytest.raises(TemplateError, match=r"unknown placeholder \{true_answer\} in template 'lema_correction'"):
        validate_template(edited)


def test_render_validates_before_filling():
    broken = PromptTemplate("fair_rationale", "fair", "", "{question} {oops}", ("question", "oops"))
    with pytest.raises(TemplateError, match=r"unknown placeholder \{oops\}"):
        render(broken, question="Q")


def test_template_fields_lists_each_name_once_in_order():
    assert template_fields("{b} {a} {b} {{c}}") == ("b", "a")
