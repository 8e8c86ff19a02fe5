"""A small arithmetic evaluator for model-written expressions ("3/4", "2*(5+1)", "sqrt(2)/2"), safe where eval() is not."""

from __future__ import annotations

import ast
import math
import operator

MAX_EXPRESSION = 500  # model answers are short; a longer "expression" is prose, not arithmetic
MAX_EXPONENT = 1000

_BINARY = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS = {"sqrt": math.sqrt}
_CONSTANTS = {"pi": math.pi}


def evaluate(expression: str, variables: dict[str, float] | None = None) -> float | None:
    """The value of an arithmetic expression, or None when it is not one (or would overflow).

    Only numbers, + - * / **, parentheses, sqrt(), pi and the given variables are allowed: the
    text comes from a model, so nothing that Python's eval() could run is ever reached.
    """
    expression = expression.strip()
    if not expression or len(expression) > MAX_EXPRESSION:
        return None
    try:
        tree = ast.parse(expression, mode="eval")
        value = _value(tree.body, {**_CONSTANTS, **(variables or {})})
    except (SyntaxError, ValueError, TypeError, ArithmeticError, RecursionError):
        return None
    return value if math.isfinite(value) else None


def _value(node: ast.AST, names: dict[str, float]) -> float:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _value(node.left, names), _value(node.right, names)
        if isinstance(node.op, ast.Pow) and abs(right) > MAX_EXPONENT:
            raise OverflowError("exponent too large")
        return float(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_value(node.operand, names))
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    if _is_known_call(node):
        return _FUNCTIONS[node.func.id](_value(node.args[0], names))  # type: ignore[attr-defined]
    raise ValueError(f"not arithmetic: {ast.dump(node)[:80]}")


def _is_known_call(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and len(node.args) == 1 and not node.keywords)
