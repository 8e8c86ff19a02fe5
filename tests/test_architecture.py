"""The dependency rule: pipeline/ never imports Django or webapp; gpu_worker/ never imports webapp."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WEB_FRAMEWORKS = {"django", "webapp", "rest_framework", "channels", "celery", "daphne", "drf_spectacular", "django_htmx"}


def imported_top_modules(path: Path) -> set[str]:
    """Top-level module names a file imports, anywhere in it (function-level imports count too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def offenders(package: str, forbidden: set[str]) -> list[str]:
    found = []
    for path in sorted((REPO / package).rglob("*.py")):
        bad = imported_top_modules(path) & forbidden
        if bad:
            found.append(f"{path.relative_to(REPO)} imports {', '.join(sorted(bad))}")
    return found


def test_pipeline_is_plain_python():
    assert offenders("pipeline", WEB_FRAMEWORKS) == []


def test_gpu_worker_never_imports_the_web_app():
    assert offenders("gpu_worker", {"webapp", "django"}) == []


def test_the_guard_catches_a_function_level_import(tmp_path):
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text("def f():\n    from django.db import models\n    import webapp.settings\n")
    assert imported_top_modules(sneaky) >= {"django", "webapp"}


@pytest.mark.parametrize("package", ["webapp", "pipeline", "gpu_worker"])
def test_every_module_starts_with_a_docstring(package):
    missing = [
        str(path.relative_to(REPO))
        for path in sorted((REPO / package).rglob("*.py"))
        if "migrations" not in path.parts and path.read_text().strip() and ast.get_docstring(ast.parse(path.read_text())) is None
    ]
    assert missing == []
