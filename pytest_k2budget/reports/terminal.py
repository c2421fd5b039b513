"""The results table pytest prints after the tests (pytest_terminal_summary)."""

from __future__ import annotations

from tabulate import tabulate

from ..budgets import Budgets
from ..window import Window
from .table import RowStatus, Verdicts, build_rows, columns, header_percentile, partial, summary_lines

STATUS: dict[RowStatus, str] = {"passed": "passed", "failed": "FAILED", "no data": "no data"}


def terminal_table(budgets: Budgets, window: Window, verdicts: Verdicts) -> str:
    """A PARTIAL marker if any, the table, then who is over budget, what was not judged, and the window."""
    rows = build_rows(budgets, verdicts)
    percentile = header_percentile(rows)
    table = tabulate(
        [
            [r.service, r.cpu_budget(), r.cpu_actual(percentile), r.ram_budget(), r.ram_actual(), STATUS[r.status]]
            for r in rows
        ],
        headers=columns(rows),
        tablefmt="simple",
        disable_numparse=True,
        colalign=("left", "right", "right", "right", "right", "left"),
    )
    marker = partial(window)
    lines = [marker] if marker else []
    lines.append(table)
    lines += [f"{label}: {text}" for label, text in summary_lines(budgets, window, rows, str)]
    return "\n".join(lines)
