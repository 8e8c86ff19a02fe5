"""Chat with a study assistant: the messages sent to the model, a mistake as context, and "explain my mistake".

"Explain my mistake" asks in SALAM's own words (``pipeline.seeds.salam_finetune.render_input``), so an
assistant trained on SALAM's data sees the prompt it learnt and answers ``{"reason", "guideline"}``.
Similar past mistakes, when there are any, go before it in a system message, numbered for citing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pipeline.exams.prompts import case_text
from pipeline.exams.retrieval import PastCase
from pipeline.seeds.salam_finetune import INSTRUCTION, render_input
from pipeline.teaching.salam import SalamFeedback, parse_salam_feedback

SYSTEM_PROMPT = (
    "You are Errata's study assistant. Help the learner understand problems and their own mistakes: find the "
    "step that went wrong, explain why, and say how to avoid it next time. Be brief and concrete. Write in "
    "Markdown, with $...$ for math."
)
TITLE_CHARS = 60


@dataclass(frozen=True)
class Mistake:
    """What a conversation is about: a question, the learner's (or a student model's) answer, the gold if known."""

    question: str
    answer: str
    gold: str = ""
    work: str = ""  # the reasoning that led to the answer, when there is one (a student model's output)

    @classmethod
    def from_context(cls, context: dict) -> "Mistake | None":
        """The mistake a session's context JSON holds, or None when it holds none."""
        if not context.get("question"):
            return None
        return cls(**{name: str(context.get(name) or "") for name in ("question", "answer", "gold", "work")})

    def as_context(self) -> dict:
        return {"question": self.question, "answer": self.answer, "gold": self.gold, "work": self.work}


def mistake_text(mistake: Mistake) -> str:
    """The mistake as the assistant is told about it at the start of a conversation."""
    lines = ["The learner wants to talk about this problem.", "", "Question:", mistake.question, ""]
    if mistake.work:
        lines += ["The work shown:", mistake.work, ""]
    lines.append(f"The answer given: {mistake.answer or '(none)'}")
    if mistake.gold:
        lines.append(f"The correct answer: {mistake.gold}")
    return "\n".join(lines)


def chat_messages(turns: Sequence[dict], *, max_turns: int, mistake: Mistake | None = None,
                  system: str = SYSTEM_PROMPT) -> list[dict]:
    """The request for the next answer: the system prompt (with the mistake), then the last ``max_turns`` turns.

    ``turns`` are ``{"role": "user"|"assistant", "content"}`` in order; a turn starts at a user message, so the
    history is cut at the ``max_turns``-th user message from the end. Empty messages (an answer stopped or
    failed before its first word) are left out.
    """
    spoken = [t for t in turns if t["content"]]
    users = [i for i, t in enumerate(spoken) if t["role"] == "user"]
    start = users[-max_turns] if len(users) >= max_turns else 0
    header = system if mistake is None else f"{system}\n\n{mistake_text(mistake)}"
    return [{"role": "system", "content": header}] + [{"role": t["role"], "content": t["content"]} for t in spoken[start:]]


def title_for(text: str) -> str:
    """A conversation's title from its first message: the words of its first line, cut at ``TITLE_CHARS``."""
    first = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
    return first if len(first) <= TITLE_CHARS else first[: TITLE_CHARS - 1].rstrip() + "…"


# --- explain my mistake -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CitedCase:
    """A similar past mistake with the feedback reviewers approved on it, and how similar it is."""

    case: PastCase
    feedback: str
    score: float


def explain_prompt(mistake: Mistake) -> str:
    """SALAM's feedback request; without a gold answer, the same words less "while the true answer is"."""
    if mistake.gold:
        return render_input(mistake.question, mistake.answer, mistake.gold)
    return f"{mistake.question}\nWe get the answer {mistake.answer} from the model. \n{INSTRUCTION}"


def cited_block(cases: Sequence[CitedCase]) -> str:
    """The similar past mistakes as numbered sources: [1] question, wrong answer, gold, approved feedback."""
    return "\n\n".join(f"[{number}] {case_text(cited.case)}\nApproved feedback: {cited.feedback}"
                       for number, cited in enumerate(cases, start=1))


def explain_messages(mistake: Mistake, cases: Sequence[CitedCase] = ()) -> list[dict]:
    """The messages asking an assistant for ``{"reason", "guideline"}`` on ``mistake``."""
    messages = []
    if cases:
        messages.append({"role": "system", "content": "Similar past mistakes, with feedback that reviewers approved. "
                                                      "Cite them as [1], [2] where they help.\n\n" + cited_block(cases)})
    return messages + [{"role": "user", "content": explain_prompt(mistake)}]


def parse_explanation(reply: str) -> SalamFeedback:
    """The assistant's ``{reason, guideline}``; ``ok`` False (show ``raw``) when the reply is not that JSON."""
    return parse_salam_feedback(reply)
