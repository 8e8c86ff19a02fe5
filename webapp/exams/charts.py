"""Per-task accuracy bars (one series per exam, 95% interval whiskers) as geometry for an inline SVG template."""

from __future__ import annotations

from collections.abc import Sequence

from pipeline.exams.stats import OVERALL, TaskRow, TaskTable

LABEL_WIDTH, PLOT_WIDTH, VALUE_WIDTH = 190, 380, 70
BAR_HEIGHT, BAR_GAP, GROUP_GAP, TOP = 14, 3, 12, 24
TICKS = (0, 25, 50, 75, 100)


def _bar(row: TaskRow | None, y: float, series: int) -> dict:
    if row is None or row.n == 0:
        return {"y": y, "mid": y + BAR_HEIGHT / 2, "text_y": y + BAR_HEIGHT - 3, "width": 0, "text": "—", "series": series, "low": None, "high": None}
    low, high = row.interval
    return {"y": y, "mid": y + BAR_HEIGHT / 2, "text_y": y + BAR_HEIGHT - 3, "width": round(row.accuracy * PLOT_WIDTH, 1), "series": series,
            "text": f"{100 * row.accuracy:.0f}% ({row.correct}/{row.n})",
            "low": round(LABEL_WIDTH + low * PLOT_WIDTH, 1), "high": round(LABEL_WIDTH + high * PLOT_WIDTH, 1)}


def task_bars(series: Sequence[tuple[str, TaskTable]]) -> dict:
    """Rows of bars, one row per task (every task any series has, then "overall"), one bar per series."""
    tasks = sorted({row.task for _, table in series for row in table.rows}) + [OVERALL]
    lookup = [{row.task: row for row in (*table.rows, table.overall)} for _, table in series]
    group = len(series) * (BAR_HEIGHT + BAR_GAP) + GROUP_GAP
    rows = []
    for index, task in enumerate(tasks):
        top = TOP + index * group
        bars = [_bar(rows_by_task.get(task), top + s * (BAR_HEIGHT + BAR_GAP), s) for s, rows_by_task in enumerate(lookup)]
        rows.append({"task": task, "label_y": top + len(series) * (BAR_HEIGHT + BAR_GAP) / 2 + 4, "bars": bars})
    height = TOP + len(tasks) * group + 4
    return {"width": LABEL_WIDTH + PLOT_WIDTH + VALUE_WIDTH + 20, "height": height, "plot_x": LABEL_WIDTH,
            "label_x": LABEL_WIDTH - 8, "plot_width": PLOT_WIDTH, "bar_height": BAR_HEIGHT, "value_x": LABEL_WIDTH + PLOT_WIDTH + 8, "bottom": height - 4,
            "series": [name for name, _ in series], "rows": rows,
            "ticks": [{"x": LABEL_WIDTH + t * PLOT_WIDTH / 100, "label": f"{t}%"} for t in TICKS]}
