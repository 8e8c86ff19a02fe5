"""manage.py import_dataset and load_demo."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings

from tests.webapp.datasets.helpers import write_gsm8k
from webapp.accounts.models import User
from webapp.datasets.models import Dataset, Problem

pytestmark = pytest.mark.django_db


def test_import_dataset_imports_and_reports(tmp_path, capsys):
    call_command("import_dataset", str(write_gsm8k(tmp_path / "grade.jsonl", 12)), "--name", "mine", "--split-seed", "5")
    assert "mine: 12 problems added, 0 already there" in capsys.readouterr().out
    dataset = Dataset.objects.get(name="mine")
    assert dataset.split_rule["seed"] == 5 and dataset.problems.filter(split="test").count() == 2


def test_import_dataset_first80_rule(tmp_path):
    call_command("import_dataset", str(write_gsm8k(tmp_path / "grade.jsonl", 10)), "--split-rule", "first80")
    splits = list(Problem.objects.order_by("position").values_list("split", flat=True))
    assert splits == ["train"] * 8 + ["test"] * 2


def test_import_dataset_fails_loudly_on_a_bad_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "answer": "1\\n#### 1"}\n{"question": "q", "answer": 5}\n')
    with pytest.raises(CommandError, match="nothing was imported: .*bad.jsonl.*line 2"):
        call_command("import_dataset", str(bad))
    assert Dataset.objects.count() == 0


def test_load_demo_is_idempotent_and_makes_no_users_outside_development(capsys):
    call_command("load_demo", "--count", "50")
    call_command("load_demo", "--count", "50")
    assert Problem.objects.count() == 50
    assert User.objects.count() == 0
    assert "0 problems added" in capsys.readouterr().out


@override_settings(DEBUG=True, ERRATA_DEMO=True)
def test_load_demo_on_a_development_machine_prints_a_user_per_role(capsys):
    call_command("load_demo", "--count", "5", "--password", "demo-pass-123")
    out = capsys.readouterr().out
    assert {u.role for u in User.objects.all()} == {"admin", "researcher", "annotator"}
    assert "demo-pass-123" in out and User.objects.get(username="researcher").check_password("demo-pass-123")


def test_demo_users_are_refused_outside_development():
    with pytest.raises(CommandError, match="DEBUG=1 ERRATA_DEMO=1"):
        call_command("create_demo_users")
