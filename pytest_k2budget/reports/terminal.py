"""The results table pytest prints after the tests (pytest_terminal_summary)."""

from __future__ import annotations

from tabulate import tabulate

from ..budgets import Budgets
from ..window import Window
from .table import (
    RowStatus,
    Verdicts,
    build_rows,
    columns,
    gaps_summary,
    header_percentile,
    not_judged,
    over_budget,
    partial,
    unbudgeted,
    window_summary,
    without_samples,
)

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
    lines += [table, f"Over budget: {over_budget(rows, str)}"]
    for label, text in (
        ("No samples (tests fail)", without_samples(rows, str)),
        ("Not judged", not_judged(rows, str)),
        ("Without a budget (counted in TOTAL only)", unbudgeted(budgets, window, str)),
        ("Window", window_summary(window)),
        ("Gaps", gaps_summary(window)),
    ):
        if text is not None:
            lines.append(f"{label}: {text}")
    return "\n".join(lines)
