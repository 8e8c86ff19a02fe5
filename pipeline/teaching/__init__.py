"""Teacher prompts and parsers for the five methods: what to send a teacher, and what its reply means.

Pure functions only: builders return chat messages (lists of {"role", "content"}), parsers turn a
reply into a typed record whose ``ok``/``error`` say whether it followed the format. A reply that
does not is data to keep and show, never an exception.
"""

from __future__ import annotations

from pipeline.attempts import AttemptRecord
from pipeline.benchmarks.records import ProblemRecord
from pipeline.guidance import teacher_help_messages
from pipeline.teaching.fair import (
    fair_accepts, fair_feedback_messages, fair_peer_review_messages, fair_rationale_messages, mean_peer_score,
    parse_fair_feedback, parse_fair_rationale, parse_peer_score, peer_review_plan, valid_score,
)
from pipeline.teaching.lbt import LbtRationale, lbt_rationale_messages, parse_lbt_rationale
from pipeline.teaching.lema import LemaCorrection, lema_auto_check, lema_correction_messages, parse_lema_correction
from pipeline.teaching.parsing import TeacherText, parse_teacher_text
from pipeline.teaching.salam import SalamFeedback, parse_salam_feedback, salam_feedback_messages
from pipeline.teaching.templates import (
    DEFAULT_TEMPLATES, METHODS, TEMPLATE_KINDS, PromptTemplate, TemplateError, render, template_from_text,
    validate_template,
)

__all__ = [
    "DEFAULT_TEMPLATES", "METHODS", "TEMPLATE_KINDS", "LbtRationale", "LemaCorrection", "PromptTemplate",
    "SalamFeedback", "TeacherText", "TemplateError", "fair_accepts", "fair_feedback_messages",
    "fair_peer_review_messages", "fair_rationale_messages", "gsi_help_messages", "lbt_rationale_messages",
    "lema_auto_check", "lema_correction_messages", "mean_peer_score", "parse_fair_feedback",
    "parse_fair_rationale", "parse_gsi_help", "parse_lbt_rationale", "parse_lema_correction", "parse_peer_score",
    "parse_salam_feedback", "parse_teacher_text", "peer_review_plan", "render", "salam_feedback_messages",
    "template_from_text", "valid_score", "validate_template",
]


def gsi_help_messages(problem: ProblemRecord, wrong: AttemptRecord) -> list[dict]:
    """GSI teacher help: the teacher is asked for a correction of ``wrong`` (see `pipeline.guidance`)."""
    return teacher_help_messages(problem, wrong)


def parse_gsi_help(text: object) -> TeacherText:
    """A GSI correction is free text: any non-empty reply, passed on to the student's revision."""
    return parse_teacher_text(text)
