"""String normalisation of MATH answers: Hendrycks' `strip_string` (LEMA, LbT) and LbT's Minerva-style rewrite."""

from __future__ import annotations

import re


class NotNormalisable(ValueError):
    """The input makes the seed's normaliser fail (an assert or an index error in the original code)."""


def hendrycks_strip(answer: str, *, slash_needs_ints: bool = False) -> str:
    """Hendrycks et al.'s MATH normalisation, step for step, failing where the original fails.

    Spaces, "\\left"/"\\right", "\\!", degrees, "\\$", "\\%" and a trailing "\\text{ unit}" go;
    "dfrac"/"tfrac" -> "frac"; "\\frac12" -> "\\frac{1}{2}"; "\\sqrt3" -> "\\sqrt{3}"; ".5" -> "0.5";
    "0.5" -> "\\frac{1}{2}" (that one value only); "k = 5" -> "5" when the left side is short;
    "3/4" -> "\\frac{3}{4}" for plain integers. `slash_needs_ints` reproduces LbT's copy, which
    raises on "x/y" where LEMA's copy leaves it alone.
    """
    answer = answer.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    answer = answer.replace("tfrac", "frac").replace("dfrac", "frac")
    answer = answer.replace("\\left", "").replace("\\right", "")
    answer = answer.replace("^{\\circ}", "").replace("^\\circ", "")
    answer = answer.replace("\\$", "")
    answer = _remove_right_units(answer)
    answer = answer.replace("\\%", "")
    answer = answer.replace(" .", " 0.").replace("{.", "{0.")
    if not answer:
        return answer
    if answer[0] == ".":
        answer = "0" + answer
    sides = answer.split("=")
    if len(sides) == 2 and len(sides[0]) <= 2:
        answer = sides[1]
    answer = _fix_sqrt(answer).replace(" ", "")
    answer = _fix_fracs(answer)
    if answer == "0.5":
        answer = "\\frac{1}{2}"
    return _fix_a_slash_b(answer, slash_needs_ints)


def _remove_right_units(answer: str) -> str:
    # Hendrycks: "\text{ " (with the space) only ever introduces a unit in MATH answers.
    if "\\text{ " not in answer:
        return answer
    parts = answer.split("\\text{ ")
    if len(parts) != 2:
        raise NotNormalisable("more than one '\\text{ '")
    return parts[0]


def _fix_sqrt(answer: str) -> str:
    parts = answer.split("\\sqrt")
    fixed = parts[0]
    for part in parts[1:]:
        if not part:
            raise NotNormalisable("\\sqrt at the end")
        fixed += "\\sqrt" + (part if part[0] == "{" else "{" + part[0] + "}" + part[1:])
    return fixed


def _fix_fracs(answer: str) -> str:
    parts = answer.split("\\frac")
    fixed = parts[0]
    for part in parts[1:]:
        if not part:
            raise NotNormalisable("\\frac at the end")
        fixed += "\\frac"
        if part[0] == "{":
            fixed += part
        elif len(part) < 2:
            return answer  # "\frac1": the original gives up and keeps the input
        elif part[1] != "{":
            fixed += "{" + part[0] + "}{" + part[1] + "}" + part[2:]
        else:
            fixed += "{" + part[0] + "}" + part[1:]
    return fixed


def _fix_a_slash_b(answer: str, slash_needs_ints: bool) -> str:
    parts = answer.split("/")
    if len(parts) != 2:
        return answer
    try:
        numerator, denominator = int(parts[0]), int(parts[1])
    except ValueError:
        if slash_needs_ints:
            raise NotNormalisable("a/b with a non-integer side") from None
        return answer
    if answer != f"{numerator}/{denominator}":
        return answer
    return "\\frac{" + str(numerator) + "}{" + str(denominator) + "}"


# --- LbT's `_normalize_final_answer` (Minerva's list, as copied into lbt/datasets_adapter/math_dataset.py)

_MINERVA_REGEX_SUBSTITUTIONS = ((r"\\le(?!ft)", "<"), (r"(?<!le)(ft)", ""))
_MINERVA_SUBSTITUTIONS = (
    ("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), ("\\ ", ""), (" ", ""), ("mbox", "text"),
    (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"),
)
_MINERVA_REMOVED = (
    "square", "ways", "integers", "dollars", "mph", "inches", "hours", "km", "units", "\\ldots", "sue",
    "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters", "meals",
    "edges", "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}",
    "\\text{}^2", "\\text{}^3", "\\text{\n}", "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;",
    ",\\!", "{,}", '"', "\\dots", "\n", "\r", "\f",
)
_MINERVA_UNWRAP = (r"(\\text\{)(.*?)(\})", r"(\\textbf\{)(.*?)(\})", r"(\\overline\{)(.*?)(\})",
                   r"(\\boxed\{)(.*)(\})")


def minerva_normalise(answer: str) -> str:
    """LbT's rewrite of a final answer before comparing: unit words out, \\text{} unwrapped, shorthand TeX fixed.

    Quirks kept: "a " and "an " are deleted anywhere, as are "ft" (not after "le") and words such
    as "sue", "ways" and "square" ("\\text{issue}" -> "is").
    """
    for pattern, replacement in _MINERVA_REGEX_SUBSTITUTIONS:
        answer = re.sub(pattern, replacement, answer)
    for before, after in _MINERVA_SUBSTITUTIONS:
        answer = answer.replace(before, after)
    for expression in _MINERVA_REMOVED:
        answer = answer.replace(expression, "")
    for pattern in _MINERVA_UNWRAP:
        answer = re.sub(pattern, r"\2", answer)
    answer = re.sub(r"(frac)([^{])(.)", r"frac{\2}{\3}", answer)
    answer = re.sub(r"(?<!\\)(sqrt)", r"\\sqrt", answer)
    answer = re.sub(r"(sqrt)\(([^)]+)\)", r"sqrt{\2}", answer)
    answer = re.sub(r"(sqrt)([^{])", r"sqrt{\2}", answer)
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():
        answer = answer.replace(",", "")
    return answer


# --- Errata's default: Hendrycks plus the forms models write that it misses ---------------------

_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textrm|mathrm|mbox|operatorname)\s*\{([^{}]*)\}")
_UNIT_WORDS = re.compile(  # only after a number, so that a variable named "m" survives
    r"(?<=[\d}])(?:\s*(?:units?|square|sq|cm|m|km|inches|inch|feet|foot|ft|miles?|meters?|degrees?|"
    r"dollars?|cents?|hours?|minutes?|seconds?|days?|mph|pounds?|students?|ways)(?:\^\{?[23]\}?)?)+\s*$"
)


def errata_normalise(answer: str) -> str:
    """Hendrycks' normalisation made total (never raises) and taught a few more spellings models use.

    Extra: "\\text{...}" unwrapped, "\\," "\\;" "\\ " spacing, "^\\circ", "%" and "$" removed, a trailing
    unit word dropped ("5 cm" -> "5"), "1,000" -> "1000", a trailing "." removed, "\\dfrac" handled.
    """
    answer = answer.strip().strip("$").strip()
    answer = answer.replace("\\,", "").replace("\\;", "").replace("\\ ", " ").replace("\\displaystyle", "")
    answer = re.sub(r"\^\s*\{?\\circ\}?", "", answer).replace("°", "")
    answer = answer.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    answer = _TEXT_WRAPPER.sub(r"\1", answer)
    answer = _UNIT_WORDS.sub("", answer).rstrip(". ")
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", answer):
        answer = answer.replace(",", "")
    try:
        return hendrycks_strip(answer)
    except NotNormalisable:
        return answer.replace(" ", "")
