"""Numeric equivalence of two MATH answers: LaTeX turned into arithmetic and evaluated, variables sampled."""

from __future__ import annotations

import re

from pipeline.scoring.arithmetic import evaluate
from pipeline.scoring.numbers import close

_COMMANDS = {
    "\\cdot": "*", "\\times": "*", "\\div": "/", "\\pi": " pi ", "\\left": "", "\\right": "",
    "\\!": "", "\\,": "", "\\;": "", "\\ ": "", "\\displaystyle": "", "\\infty": " inf ",
}
_FRACTION = re.compile(r"\\[dt]?frac(?=\{)")
_ROOT = re.compile(r"\\sqrt(?:\[([^\]]+)\])?(?=\{)")
_TOKEN = re.compile(r"\d+\.?\d*|\.\d+|[A-Za-z]+|\*\*|\S")
_FUNCTIONS = {"sqrt"}
_CONSTANTS = {"pi"}
# Two arbitrary assignments; two expressions that agree at both are taken to be the same function.
_SAMPLE_VALUES = ((0.5772, 1.3247, 2.6854, 0.9159, 1.6180), (1.4142, 0.6931, 3.1416, 2.2361, 0.7071))


def equivalent_values(first: str, second: str) -> bool:
    """True when two LaTeX answers evaluate to the same number(s) (within 1e-6), variables included."""
    first_expression, second_expression = to_expression(first), to_expression(second)
    if first_expression is None or second_expression is None:
        return False
    names = sorted(_variables(first_expression) | _variables(second_expression))
    if len(names) > len(_SAMPLE_VALUES[0]):
        return False
    for values in _SAMPLE_VALUES:
        assignment = dict(zip(names, values))
        a, b = evaluate(first_expression, assignment), evaluate(second_expression, assignment)
        if a is None or b is None or not close(a, b):
            return False
    return True


def to_expression(latex: str) -> str | None:
    """Python arithmetic for a LaTeX answer ("2\\sqrt{3}" -> "2*sqrt(3)"), or None when it is not arithmetic."""
    text = latex.strip().strip("$")
    for command, replacement in _COMMANDS.items():
        text = text.replace(command, replacement)
    text = _replace_groups(text)
    if text is None or "\\" in text or "inf" in text:
        return None
    text = text.replace("^", "**").replace("{", "(").replace("}", ")").replace("[", "(").replace("]", ")")
    tokens = _TOKEN.findall(text)
    if any(token.isalpha() and len(token) > 1 and token not in _FUNCTIONS | _CONSTANTS for token in tokens):
        return None  # a word ("east", "cm"), not a product of variables: leave it to string comparison
    return _with_implicit_products(tokens)


def _replace_groups(text: str) -> str | None:
    """\\frac{a}{b} -> ((a)/(b)) and \\sqrt[n]{a} -> ((a)**(1/(n))), innermost first, braces matched."""
    for _ in range(50):  # bound the work: real answers nest a few levels at most
        fraction, root = _FRACTION.search(text), _ROOT.search(text)
        if fraction is None and root is None:
            return text
        if fraction is not None and (root is None or fraction.start() < root.start()):
            text = _replace_fraction(text, fraction)
        else:
            text = _replace_root(text, root)  # type: ignore[arg-type]
        if text is None:
            return None
    return None


def _replace_fraction(text: str, match: re.Match[str]) -> str | None:
    numerator = _braced(text, match.end())
    if numerator is None:
        return None
    denominator = _braced(text, numerator[1]) if numerator[1] < len(text) and text[numerator[1]] == "{" else None
    if denominator is None:
        return None
    return text[:match.start()] + f"(({numerator[0]})/({denominator[0]}))" + text[denominator[1]:]


def _replace_root(text: str, match: re.Match[str]) -> str | None:
    radicand = _braced(text, match.end())
    if radicand is None:
        return None
    index = match.group(1)
    replacement = f"(({radicand[0]})**(1/({index})))" if index else f"sqrt({radicand[0]})"
    return text[:match.start()] + replacement + text[radicand[1]:]


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The content of the {...} group opening at `start`, and the index just past its closing brace."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth == 0:
            return text[start + 1:index], index + 1
    return None


def _with_implicit_products(tokens: list[str]) -> str:
    # "2x", "3(4)", "x y" and "2 sqrt(3)" are products in mathematical writing.
    pieces: list[str] = []
    for token in tokens:
        if pieces and _ends_operand(pieces[-1]) and _starts_operand(token):
            pieces.append("*")
        pieces.append(token)
    return "".join(pieces)


def _ends_operand(token: str) -> bool:
    return token == ")" or token[0].isdigit() or token[0] == "." or (token.isalpha() and token not in _FUNCTIONS)


def _starts_operand(token: str) -> bool:
    return token == "(" or token[0].isdigit() or token[0] == "." or token.isalpha()


def _variables(expression: str) -> set[str]:
    words = set(re.findall(r"[A-Za-z]+", expression))
    return {word for word in words if word not in _FUNCTIONS and word not in _CONSTANTS}
