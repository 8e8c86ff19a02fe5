"""Small LaTeX helpers shared by the MATH loader and the math scorers."""

from __future__ import annotations


def last_boxed(text: str) -> str | None:
    """Return the content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in ``text``, braces matched."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        # "\boxed 5" is legal LaTeX: the argument is the next token.
        rest = text[start + len("\\boxed"):].strip()
        return rest.split()[0].rstrip("$.") if rest else None
    depth = 0
    for index in range(brace, len(text)):
        if text[index] == "{":
            depth += 1
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1:index]
    return None
