"""Reads for exams: results with intervals, the per-problem table and its filters, and the paired comparison.

Excluded (contaminated) answers are listed but never counted. Tasks are labelled by the problem's task, or its
dataset when it has none; when the answers span several datasets the label names the dataset too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from pipeline.exams.selection import RULES
from pipeline.exams.stats import PairedComparison, TaskTable, compare_exams, task_table
from webapp.datasets.models import Problem
from webapp.exams.charts import task_bars
from webapp.exams.models import ExamAnswer
from webapp.runs.models import Run, RunKind

RULE_NAMES = {"max": "MAX", "sum": "SUM", "majority": "Majority"}
VERDICTS = [("right", "Right"), ("wrong", "Wrong"), ("contaminated", "Contaminated"), ("excluded", "Excluded")]
LISTED = 200  # problems shown per list on the comparison page
LIST_TITLES = {"fixed": "Fixed: wrong before, right after", "broken": "Broken: right before, wrong after",
               "still_wrong": "Still wrong"}


def exam_runs() -> QuerySet[Run]:
    return Run.objects.filter(kind=RunKind.EXAM).select_related("created_by")


def _labels(rows: list[tuple]) -> dict[int, str]:
    """Problem id -> task label, for (problem id, task, dataset name, ...) rows."""
    several = len({row[2] for row in rows}) > 1
    return {row[0]: (f"{row[2]} / {row[1]}" if row[1] else row[2]) if several else (row[1] or row[2]) for row in rows}


def _answer_rows(run: Run, *, lbt: bool = False) -> list[tuple]:
    fields = ["problem_id", "problem__task", "problem__dataset__name", "correct", "excluded", "pk"]
    return list(ExamAnswer.objects.filter(run=run).order_by("problem_id").values_list(*fields, *(["lbt"] if lbt else [])))


@dataclass(frozen=True)
class ExamResults:
    table: TaskTable
    rules: dict[str, TaskTable]  # LbT: one table per selection rule
    answered: int
    excluded: int
    contaminated: int

    @property
    def chart(self) -> dict:
        if self.rules:
            return task_bars([(RULE_NAMES[rule], table) for rule, table in self.rules.items()])
        return task_bars([("accuracy", self.table)])

    def as_json(self) -> dict:
        return {"results": self.table.as_json(), "answered": self.answered, "excluded": self.excluded,
                "contaminated": self.contaminated, "rules": {rule: t.as_json() for rule, t in self.rules.items()}}


def exam_results(run: Run) -> ExamResults:
    """Accuracy per task and overall (Wilson 95% intervals), SALAM's min/max/average; LbT: for each rule."""
    lbt = run.config.get("mode") == "lbt"
    rows = _answer_rows(run, lbt=lbt)
    labels = _labels(rows)
    counted = [row for row in rows if not row[4]]
    rules = {}
    if lbt:
        rules = {rule: task_table((labels[row[0]], bool(row[6].get("rules", {}).get(rule, {}).get("correct")))
                                  for row in counted) for rule in RULES}
    contaminated = ExamAnswer.objects.filter(run=run).exclude(contamination=[]).count()
    return ExamResults(table=task_table((labels[row[0]], row[3]) for row in counted), rules=rules, answered=len(rows),
                       excluded=len(rows) - len(counted), contaminated=contaminated)


def exam_description(run: Run) -> str:
    """One line saying how the exam was run, from its frozen config."""
    config = run.config
    mode = {"salam": "SALAM", "lbt": "LbT M1"}.get(config.get("mode"), "Plain")
    samples = config.get("samples_per_problem", 1)
    parts = [f"{mode} exam on the {config.get('split', 'test')} split"]
    if config.get("mode") == "lbt" and config.get("lbt"):
        lbt = config["lbt"]
        parts.append(f"rationales of teacher run #{lbt.get('teacher_run_id')}, each tested on {lbt.get('exam_problems')} "
                     f"related problems ({lbt.get('related_rule')}) {lbt.get('repetitions')} times")
    elif samples > 1:
        parts.append(f"{samples} samples per problem{', majority vote' if config.get('majority_vote', True) else ''}")
    if config.get("mode") == "salam" and config.get("salam"):
        salam = config["salam"]
        cases = ("no retrieval" if salam.get("retrieve_from") == "none" else
                 f"top {salam.get('top_k')} past {salam.get('retrieve_from')} at cosine ≥ {salam.get('threshold')}")
        parts.append(f"{'guideline and ' if salam.get('guideline') else 'no guideline, '}{cases}")
    if config.get("exclude_contaminated"):
        parts.append("contaminated problems excluded")
    return "; ".join(parts)


# --- the per-problem table -----------------------------------------------------------------------------

@dataclass(frozen=True)
class AnswerFilter:
    verdict: str = ""  # "right", "wrong", "contaminated", "excluded"
    task: str = ""
    query: str = ""

    VERDICTS = {"right": Q(correct=True), "wrong": Q(correct=False), "contaminated": ~Q(contamination=[]),
                "excluded": Q(excluded=True)}

    @classmethod
    def from_params(cls, params) -> "AnswerFilter":
        verdict = params.get("verdict", "")
        return cls(verdict=verdict if verdict in cls.VERDICTS else "", task=params.get("task", "").strip(),
                   query=params.get("q", "").strip())


def answer_search(run: Run, spec: AnswerFilter) -> QuerySet[ExamAnswer]:
    answers = ExamAnswer.objects.filter(run=run).select_related("problem", "problem__dataset")
    if spec.verdict:
        answers = answers.filter(AnswerFilter.VERDICTS[spec.verdict])
    if spec.task:
        answers = answers.filter(problem__task=spec.task)
    for word in spec.query.split()[:10]:
        answers = answers.filter(Q(problem__question__icontains=word) | Q(answer__icontains=word))
    return answers.order_by("problem__dataset_id", "problem__position")


def export_rows(run: Run) -> Iterable[dict]:
    """One flat row per final answer, for CSV and JSON exports (read in chunks)."""
    answers = ExamAnswer.objects.filter(run=run).select_related("problem", "problem__dataset").order_by("problem_id")
    for answer in answers.iterator(chunk_size=1000):
        problem = answer.problem
        row = {"problem_id": problem.pk, "external_id": problem.external_id, "dataset": problem.dataset.name,
               "task": problem.task, "question": problem.question, "gold": problem.gold_answer, "answer": answer.answer,
               "correct": answer.correct, "votes": answer.votes, "samples": answer.samples, "excluded": answer.excluded,
               "contaminated": answer.contaminated, "guidance": answer.guidance}
        for rule in RULES if answer.lbt else ():
            chosen = answer.lbt.get("rules", {}).get(rule, {})
            row |= {f"{rule}_answer": chosen.get("answer"), f"{rule}_correct": chosen.get("correct")}
        yield row


# --- the paired comparison -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Comparison:
    before: Run
    after: Run
    result: PairedComparison
    before_table: TaskTable
    after_table: TaskTable
    lists: dict[str, list[dict]]  # fixed / broken / still_wrong: problem, task, both answers' ids

    @property
    def sentence(self) -> str:
        return comparison_sentence(self.result)

    @property
    def chart(self) -> dict:
        return task_bars([(f"before (#{self.before.pk})", self.before_table), (f"after (#{self.after.pk})", self.after_table)])

    @property
    def sections(self) -> list[dict]:
        return [{"name": name, "title": title, "rows": self.lists[name], "total": len(getattr(self.result, name))}
                for name, title in LIST_TITLES.items()]

    @property
    def tasks(self) -> list[dict]:
        after = {row.task: row for row in (*self.after_table.rows, self.after_table.overall)}
        return [{"task": row.task, "before": row, "after": after[row.task],
                 "change": after[row.task].accuracy - row.accuracy if row.n else None}
                for row in (*self.before_table.rows, self.before_table.overall)]


def comparison_sentence(result: PairedComparison) -> str:
    """What changed and whether it is significant at the 5% level, in one paragraph."""
    if not result.n:
        return "The two exams share no counted problems: there is nothing to compare."
    before, after = 100 * result.before.accuracy, 100 * result.after.accuracy
    move = f"stayed at {before:.1f}%" if result.difference == 0 else f"went from {before:.1f}% to {after:.1f}%"
    verdict = {"improved": "a significant improvement at the 5% level",
               "worsened": "a significant drop at the 5% level"}.get(result.verdict(), "not significant at the 5% level")
    return (f"On the {result.n} problems both exams answered, accuracy {move} "
            f"({100 * result.difference:+.1f} points, 95% interval {100 * result.interval.low:+.1f} to "
            f"{100 * result.interval.high:+.1f}). {len(result.fixed)} fixed, {len(result.broken)} broken, "
            f"{len(result.still_wrong)} still wrong. McNemar's exact test: p = {result.mcnemar.p_value:.3g}, {verdict}.")


def exam_comparison(before: Run, after: Run) -> Comparison:
    """The two exams on the problems both answered and counted (an answer excluded in either is left out)."""
    before_rows, after_rows = _answer_rows(before), _answer_rows(after)
    labels = _labels(before_rows + after_rows)
    result = compare_exams({row[0]: row[3] for row in before_rows if not row[4]},
                           {row[0]: row[3] for row in after_rows if not row[4]})
    shared = set(result.fixed) | set(result.broken) | set(result.still_wrong) | set(result.still_right)
    ids = {"before": {row[0]: row[5] for row in before_rows}, "after": {row[0]: row[5] for row in after_rows}}
    lists = {name: _listed(getattr(result, name), labels, ids) for name in LIST_TITLES}
    return Comparison(before, after, result,
                      task_table((labels[row[0]], row[3]) for row in before_rows if row[0] in shared),
                      task_table((labels[row[0]], row[3]) for row in after_rows if row[0] in shared), lists)


def _listed(problem_ids: tuple, labels: dict[int, str], ids: dict) -> list[dict]:
    shown = problem_ids[:LISTED]
    problems = Problem.objects.in_bulk(shown)
    return [{"problem": problems[pk], "task": labels[pk], "before": ids["before"][pk], "after": ids["after"][pk]}
            for pk in shown]
