"""Scorers for multiple-choice answers: Errata's default and the SALAM, AQuA, LEMA-CSQA and FAIR-LogiQA rules."""

from __future__ import annotations

import re
import string

from pipeline.scoring.common import NOTHING, Score, marked_answer, scorer

LETTERS = string.ascii_uppercase

# --- reading gold ------------------------------------------------------------------------------

_GOLD_LETTER = re.compile(r"\(?([A-Za-z])\)?[.:]?")
_GOLD_OPTION = re.compile(r"\(([A-Za-z])\)\s+\S.*", re.DOTALL)  # SALAM's target_option "(b) 02/16/2009"


def gold_index(gold: str, choices: tuple[str, ...]) -> int | None:
    """The option a gold answer names: a letter ("B", "(b)"), a full option "(b) text", or the option text."""
    gold = gold.strip()
    letter = _GOLD_LETTER.fullmatch(gold) or _GOLD_OPTION.fullmatch(gold)
    if letter:
        return LETTERS.index(letter.group(1).upper())
    return text_index(gold, choices)


def text_index(text: str, choices: tuple[str, ...]) -> int | None:
    """The index of the option whose text equals `text` (case, spacing and end punctuation aside)."""
    wanted = normal_text(text)
    for index, choice in enumerate(choices):
        if wanted and normal_text(choice) == wanted:
            return index
    return None


def normal_text(text: str) -> str:
    """Lower case, single spaces, no wrapping punctuation, quotes or markdown: for comparing short answers."""
    return " ".join(text.lower().split()).strip(" .,;:!?\"'`*")


# --- Errata's default --------------------------------------------------------------------------

_OPTION_WORD = r"(?:(?i:option|choice)\s*)?"
_LEADING = r"^[\s*\"'`:]*" + _OPTION_WORD
# "(B)", "B)", "[B]", "(b) text" at the start of an answer.
_START_BRACKETED = re.compile(_LEADING + r"[(\[]?([A-Za-z])[)\]]")
# "B", "B.", "B:" at the start, alone or before something that is not a lower-case word ("A man...").
_START_BARE = re.compile(_LEADING + r"([A-Z])(?:[.:,]?\s*$|[.:,]\s|\s+(?![a-z]))")
# After a marker the letter may be followed by anything: "The answer is B because ...".
_MARKED_BARE = re.compile(_LEADING + r"([A-Z])\b(?!['\u2019])")
# Anywhere in a long answer: "(B)" or "option B".
_ANYWHERE = re.compile(r"\(([A-Za-z])\)|\b(?i:option|choice)\s+\(?([A-Z])\b")


@scorer
def choice(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """Default multiple-choice rule: the option letter or option text the answer ends on; index equality.

    Read in order: the answer after the last final-answer marker ("The answer is (B)", "Answer: B",
    \\boxed{B}); a letter opening the output ("(B)", "B)", "B.", "Option B", "(b) text"); the whole
    output equal to an option's text; the last "(B)" or "option B" anywhere; the option text that
    appears last; the one option that contains the whole output. Letters beyond the options given
    are ignored except at the very start.
    """
    index = chosen_index(output, choices)
    if index is None:
        return NOTHING
    expected = gold_index(gold, choices)
    return Score(LETTERS[index], expected is not None and index == expected)


def chosen_index(output: str, choices: tuple[str, ...]) -> int | None:
    """The option (0-based) that a model output picks, or None."""
    marked = marked_answer(output)
    if marked is not None:
        index = _index_in_answer(marked.text, choices)
        if index is not None:
            return index
    for find in (_letter_at_start, text_index, _last_letter, _last_option_text, _part_of_one_option):
        index = find(output, choices)
        if index is not None:
            return index
    return None


def _index_in_answer(answer: str, choices: tuple[str, ...]) -> int | None:
    found = _START_BRACKETED.match(answer) or _MARKED_BARE.match(answer)
    if found and _in_range(found.group(1), choices):
        return LETTERS.index(found.group(1).upper())
    index = text_index(answer, choices)
    return index if index is not None else _last_option_text(answer, choices)


def _letter_at_start(output: str, choices: tuple[str, ...]) -> int | None:
    found = _START_BRACKETED.match(output) or _START_BARE.match(output)
    return LETTERS.index(found.group(1).upper()) if found else None


def _last_letter(output: str, choices: tuple[str, ...]) -> int | None:
    letters = [found.group(1) or found.group(2) for found in _ANYWHERE.finditer(output)]
    letters = [letter for letter in letters if _in_range(letter, choices)]
    return LETTERS.index(letters[-1].upper()) if letters else None


def _last_option_text(output: str, choices: tuple[str, ...]) -> int | None:
    """The option whose text ends latest in the output (the longer one when two end together)."""
    text = " ".join(output.lower().split())
    best: tuple[int, int, int] | None = None
    for index, choice_text in enumerate(choices):
        wanted = normal_text(choice_text)
        if not wanted:
            continue
        for found in re.finditer(r"(?<!\w)" + re.escape(wanted) + r"(?!\w)", text):
            candidate = (found.end(), len(wanted), index)
            best = candidate if best is None or candidate[:2] > best[:2] else best
    return best[2] if best else None


def _part_of_one_option(output: str, choices: tuple[str, ...]) -> int | None:
    """The one option whose text contains the whole output ("The designer" -> "Gave the designer a prototype")."""
    wanted = normal_text(output)
    if len(wanted) < 3:
        return None  # "a" or "no" would be inside too many options to mean one of them
    holders = [index for index, choice_text in enumerate(choices)
               if re.search(r"(?<!\w)" + re.escape(wanted) + r"(?!\w)", normal_text(choice_text))]
    return holders[0] if len(holders) == 1 else None


def _in_range(letter: str, choices: tuple[str, ...]) -> bool:
    index = LETTERS.index(letter.upper())
    return index < len(choices) if choices else True


# --- SALAM (dqwang122/SALAM src/utils/tools.py, check_result) -----------------------------------

_SALAM_OPTION = re.compile(r"\([a-z]\)")


@scorer
def salam_mc(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """SALAM's BBH/BBQ rule: first "(x)" in the cleaned, lower-cased output; substring either way with the full target option.

    Cleaning, as in the seed: strip; drop leading characters from the set {"A", ":", " "} (Python's
    lstrip("A: ") takes a set, not a prefix); drop trailing "."; lower-case; delete newlines;
    full-width brackets to ASCII. The target is the whole option, "(b) 02/16/2009".
    Quirks kept: an output "A" cleans to "" and is wrong even when the target is (A); "A)" cleans
    to ")", which is inside every target, so it is right whatever the target; "02/16/2009" alone
    is right because it is a substring of the target option.
    """
    cleaned = _salam_clean(output)
    found = _SALAM_OPTION.search(cleaned)
    extracted = found.group(0) if found else cleaned
    target = _salam_target(gold, choices)
    correct = extracted != "" and (extracted in target or target in extracted)
    return Score(extracted or None, correct)


def _salam_clean(output: str) -> str:
    cleaned = output.strip().lstrip("A: ").rstrip(".").lower()
    return cleaned.replace("\n", "").replace("\uff09", ")").replace("\uff08", "(")


def _salam_target(gold: str, choices: tuple[str, ...]) -> str:
    gold = gold.strip()
    letter = _GOLD_LETTER.fullmatch(gold)
    if letter:
        index = LETTERS.index(letter.group(1).upper())
        option = f"({letter.group(1).lower()})"
        return f"{option} {choices[index]}".lower() if index < len(choices) else option
    return gold.lower()


# --- AQuA / MathQA (GSI's evaluation) -----------------------------------------------------------

_AQUA_TRIGGER = re.compile(r"answer is", re.IGNORECASE)
_AQUA_LETTER = re.compile(r"\(([A-Ea-e])\)|(?<![A-Za-z])([A-E])(?![A-Za-z])")


@scorer
def aqua_letter(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """AQuA/MathQA rule: the first option letter A-E after the last "The answer is", "(C)" or "C"; letter ==.

    Nothing is read from an output without the trigger, and a letter after F is never an option.
    """
    triggers = list(_AQUA_TRIGGER.finditer(output))
    if not triggers:
        return NOTHING
    found = _AQUA_LETTER.search(output, triggers[-1].end())
    if found is None:
        return NOTHING
    letter = (found.group(1) or found.group(2)).upper()
    expected = gold_index(gold, choices)
    return Score(letter, expected is not None and LETTERS.index(letter) == expected)


# --- CommonsenseQA (LEMA) ----------------------------------------------------------------------

CSQA_TRIGGER = "The answer is"
MAX_CSQA_ANSWER = 1000  # an "answer" longer than this is prose; it also bounds the edit-distance work


@scorer
def csqa_nearest(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """LEMA's CommonsenseQA rule: the line after the last "The answer is", mapped to the candidate nearest by edit distance.

    Correct when that candidate is the gold answer (gold may be the answer text or its letter).
    Ties go to the earlier candidate; nothing is read from an output without the trigger.
    """
    at = output.rfind(CSQA_TRIGGER)
    if at < 0 or not choices:
        return NOTHING
    answer = normal_text(output[at + len(CSQA_TRIGGER):].strip().split("\n")[0][:MAX_CSQA_ANSWER])
    distances = [levenshtein(answer, normal_text(candidate)) for candidate in choices]
    nearest = distances.index(min(distances))
    expected = gold_index(gold, choices)
    return Score(choices[nearest], expected is not None and nearest == expected)


def levenshtein(a: str, b: str) -> int:
    """Edit distance: the fewest single-character insertions, deletions and substitutions from a to b."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, start=1):
        current = [i]
        for j, char_b in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


# --- LogiQA (FAIR infer_student_wrong.py, cleanup) ----------------------------------------------


@scorer
def logiqa_option(output: str, gold: str, choices: tuple[str, ...]) -> Score:
    """FAIR's LogiQA rule: the first option (in list order) whose text appears between "Answer:" and "Rationale:"; index ==.

    As in the seed's greedy regex "(.*)Answer:(.*)Rationale:(.*)", the section runs from the last
    "Answer:" that has a "Rationale:" after it to the last "Rationale:". Quirks kept: an output
    without "Rationale:" is never right, and an option whose text contains another option's text
    loses to the one listed first. Gold is the option index ("2", FAIR's form) or letter ("C").
    """
    rationale = output.rfind("Rationale:")
    answer = output.rfind("Answer:", 0, rationale) if rationale >= 0 else -1
    if answer < 0:
        return NOTHING
    section = output[answer + len("Answer:"):rationale]
    for index, option in enumerate(choices):
        if option in section:
            return Score(LETTERS[index], index == _logiqa_gold(gold, choices))
    return NOTHING


def _logiqa_gold(gold: str, choices: tuple[str, ...]) -> int | None:
    gold = gold.strip()
    return int(gold) if gold.isdigit() else gold_index(gold, choices)
