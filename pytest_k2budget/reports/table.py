"""The results table every report prints: one row per budgeted service plus the stack total.

Rows take their figures from verdicts only (CPU actual = the `cpu_p99` verdict's measured value, RAM actual =
the `ram_max` one's), so a number shown in the terminal, the Markdown and the HTML report is the number the
test judged. A criterion without a verdict (deselected with `-k`, or skipped) is shown as not judged, never
as a pass.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from ..budgets import Budgets, ServiceBudget
from ..criteria import SERVICE_CRITERIA, TOTAL_CRITERIA, Verdict, partial_note
from ..units import format_budget_size, format_cores, format_duration, format_size
from ..window import TOTAL, Window

RowStatus = Literal["passed", "failed", "no data"]
Verdicts = Mapping[tuple[str, str], Verdict]
Namer = Callable[[str], str]

NO_FIGURE = "--"
NOT_JUDGED = "not judged"
NOT_RUN = "not run"


@dataclass(frozen=True)
class Row:
    budget: ServiceBudget
    cpu: Verdict | None
    ram: Verdict | None
    status: RowStatus
    failed: tuple[Verdict, ...]
    # (criterion, why) for each criterion without a pass/fail verdict.
    unjudged: tuple[tuple[str, str], ...]

    @property
    def service(self) -> str:
        return self.budget.name

    @property
    def is_total(self) -> bool:
        return self.budget.name == TOTAL

    def cpu_budget(self) -> str:
        return format_cores(self.budget.cpu)

    def ram_budget(self) -> str:
        return format_budget_size(self.budget.ram)

    def cpu_actual(self, percentile: float) -> str:
        """The percentile the header names is implied; a service judged at another one says which."""
        text = _actual(self.cpu, format_cores)
        if self.cpu is not None and self.cpu.measured is not None and self.budget.cpu_percentile != percentile:
            text += f" (p{self.budget.cpu_percentile:g})"
        return text

    def ram_actual(self) -> str:
        return _actual(self.ram, format_size)


def _actual(verdict: Verdict | None, fmt: Callable[[float], str]) -> str:
    if verdict is None or verdict.status == "skipped":
        return NOT_JUDGED
    if verdict.measured is None:
        return NO_FIGURE
    return fmt(verdict.measured)


def _no_samples(verdict: Verdict) -> bool:
    # criteria fail every criterion of a service without samples, and only then fail without a figure.
    return verdict.status == "failed" and verdict.measured is None


def _reason(verdict: Verdict) -> str:
    """A skipped verdict's reason: its message without the PARTIAL marker and the service prefix."""
    return verdict.message.split(f"{verdict.service}: ", 1)[-1]


def build_rows(budgets: Budgets, verdicts: Verdicts) -> list[Row]:
    rows = []
    for budget, criteria in [*((b, SERVICE_CRITERIA) for b in budgets.services), (budgets.total, TOTAL_CRITERIA)]:
        own = {c: verdicts.get((budget.name, c)) for c in criteria}
        judged = [v for v in own.values() if v is not None and v.status != "skipped"]
        failed = tuple(v for v in judged if v.status == "failed")
        status: RowStatus
        if not judged or any(_no_samples(v) for v in judged):
            status = "no data"
        elif failed:
            status = "failed"
        else:
            status = "passed"
        unjudged = tuple(
            (c, NOT_RUN if v is None else _reason(v)) for c, v in own.items() if v is None or v.status == "skipped"
        )
        rows.append(Row(budget, own["cpu_p99"], own["ram_max"], status, failed, unjudged))
    return rows


def header_percentile(rows: list[Row]) -> float:
    """The percentile most rows are judged at; the CPU column's header names it."""
    percentiles = [r.budget.cpu_percentile for r in rows if not r.is_total] or [99.0]
    return max(set(percentiles), key=percentiles.count)


def columns(rows: list[Row]) -> tuple[str, ...]:
    return (
        "Service", "CPU Budget", f"CPU Actual (p{header_percentile(rows):g})", "RAM Budget", "RAM Actual (max)",
        "Status",
    )


def broken(verdict: Verdict) -> str:
    """A failed criterion with its evidence: `cpu_p99 4.40 > 4.00 cores`."""
    measured, limit = verdict.measured, verdict.limit
    if measured is None or limit is None:
        return verdict.criterion
    if verdict.criterion == "restarts":
        # restarts fails on a count above its maximum, else on an OOM kill, which allows none at all.
        if measured > limit:
            return f"restarts {measured:.0f} > {limit:.0f}"
        return "restarts (OOM kill)"
    relation = ">=" if verdict.criterion == "cpu_spike" else ">"
    if verdict.unit == "bytes":
        return f"{verdict.criterion} {format_size(measured)} {relation} {format_budget_size(int(limit))}"
    return f"{verdict.criterion} {format_cores(measured)} {relation} {format_cores(limit)} cores"


def over_budget(rows: list[Row], name: Namer) -> str:
    """`a (cpu_p99 4.40 > 4.00 cores), b (ram_max ...)`, or `None`."""
    over = [f"{name(r.service)} ({', '.join(broken(v) for v in r.failed)})" for r in rows if r.status == "failed"]
    return ", ".join(over) if over else "None"


def without_samples(rows: list[Row], name: Namer) -> str | None:
    found = [name(r.service) for r in rows if any(_no_samples(v) for v in r.failed)]
    return ", ".join(found) if found else None


def not_judged(rows: list[Row], name: Namer) -> str | None:
    """Criteria without a verdict, grouped: `restarts for every service (restarts and OOM kills cannot ...)`."""
    groups: dict[str, dict[str, list[str]]] = {}
    for row in rows:
        for criterion, why in row.unjudged:
            groups.setdefault(why, {}).setdefault(criterion, []).append(row.service)
    if not groups:
        return None
    services = [r.service for r in rows if not r.is_total]
    # Services without samples failed every criterion; they are named on a line of their own.
    sampled = [r.service for r in rows if not r.is_total and not any(_no_samples(v) for v in r.failed)]
    parts = []
    for why, by_criterion in groups.items():
        by_scope: dict[tuple[str, ...], list[str]] = {}
        for criterion, names in by_criterion.items():
            by_scope.setdefault(tuple(names), []).append(criterion)
        for scoped, criteria in by_scope.items():
            budgeted = [n for n in scoped if n != TOTAL]
            if len(budgeted) > 1 and budgeted in (services, sampled):
                scope = "every service" + (" with samples" if budgeted != services else "")
                scope += f" and {name(TOTAL)}" if TOTAL in scoped else ""
            else:
                scope = ", ".join(name(n) for n in scoped)
            parts.append(f"{', '.join(criteria)} for {scope} ({why})")
    return "; ".join(parts)


def unbudgeted(budgets: Budgets, window: Window, name: Namer) -> str | None:
    """Services seen in the stack without a budget: counted in the total only."""
    found = [name(s) for s in window.services() if s not in budgets.names]
    return ", ".join(found) if found else None


def window_summary(window: Window) -> str:
    """`24h, 288 rounds every 5m, 3,744 samples; source: replay`."""
    if window.rounds == 0:
        return f"no samples; source: {window.source}"
    return (
        f"{format_duration(window.covered)}, {window.rounds:,} round{'s' if window.rounds != 1 else ''} every "
        f"{format_duration(window.interval)}, "
        f"{window.samples:,} samples; source: {window.source}"
    )


def gaps_summary(window: Window) -> str | None:
    if not window.gaps:
        return None
    total = window.lost
    reasons = list(dict.fromkeys(g.reason for g in window.gaps))
    # A daemon that flaps can leave hundreds of gaps; the recording holds each, the report the gist.
    shown = "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else "")
    count = len(window.gaps)
    return f"{count} gap{'s' if count != 1 else ''} without samples, {format_duration(total)} in all ({shown})"


def partial(window: Window) -> str | None:
    """`PARTIAL window (covered 3h of 24h, interrupted)`, the marker every message carries, as a line."""
    note = partial_note(window)
    return note.rstrip(": ") or None


OVER_BUDGET = "Any services over budget"
NO_SAMPLES = "No samples (their tests fail)"
NOT_JUDGED_LABEL = "Not judged"
UNBUDGETED = "Without a budget (counted in Total only)"
WINDOW = "Window"
GAPS = "Gaps"
SUMMARY_LABELS = frozenset({OVER_BUDGET, NO_SAMPLES, NOT_JUDGED_LABEL, UNBUDGETED, WINDOW, GAPS})


def summary_lines(budgets: Budgets, window: Window, rows: list[Row], name: Namer) -> list[tuple[str, str]]:
    """(label, text) for every report's lines under the table: who is over budget, then what applies of
    services without samples, criteria not judged, unbudgeted containers, the window and its gaps."""
    lines = [(OVER_BUDGET, over_budget(rows, name))]
    for label, text in (
        (NO_SAMPLES, without_samples(rows, name)),
        (NOT_JUDGED_LABEL, not_judged(rows, name)),
        (UNBUDGETED, unbudgeted(budgets, window, name)),
        (WINDOW, window_summary(window)),
        (GAPS, gaps_summary(window)),
    ):
        if text is not None:
            lines.append((label, text))
    return lines
