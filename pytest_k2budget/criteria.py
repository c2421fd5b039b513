"""Verdicts: pure functions from a window and a budget. Every figure a report shows is computed here."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from .budgets import Budgets, ServiceBudget
from .units import format_budget_size, format_duration, format_size
from .window import RESTART_KINDS, TOTAL, FloatArray, Window

Status = Literal["passed", "failed", "skipped"]
Unit = Literal["cores", "bytes", "count"]

SERVICE_CRITERIA = ("cpu_p99", "cpu_spike", "ram_max", "restarts")
TOTAL_CRITERIA = ("cpu_p99", "ram_max")


@dataclass(frozen=True)
class Verdict:
    service: str
    criterion: str
    status: Status
    message: str
    measured: float | None = None
    limit: float | None = None
    unit: Unit = "cores"
    samples: int = 0

    @property
    def headroom(self) -> float | None:
        """Share of the limit left unused; negative when over."""
        if self.measured is None or self.limit is None or self.limit == 0:
            return None
        return (self.limit - self.measured) / self.limit

    def properties(self) -> list[tuple[str, object]]:
        """What JUnit XML carries for every test, passing ones too."""
        props: list[tuple[str, object]] = [
            ("k2_service", self.service), ("k2_criterion", self.criterion), ("k2_status", self.status),
            ("k2_unit", self.unit),
        ]
        if self.measured is not None:
            props.append(("k2_measured", _number(self.measured)))
        if self.limit is not None:
            props.append(("k2_budget", _number(self.limit)))
        if self.headroom is not None:
            props.append(("k2_headroom", f"{self.headroom:+.4f}"))
        props.append(("k2_samples", self.samples))
        return props


def judged_of(properties: Iterable[tuple[str, object]]) -> tuple[str, str] | None:
    """(service, criterion) of a test report that carries a verdict's properties, else None."""
    found = dict(properties)
    service, criterion = found.get("k2_service"), found.get("k2_criterion")
    if isinstance(service, str) and isinstance(criterion, str):
        return service, criterion
    return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.6g}"


def clock(t: float) -> str:
    return time.strftime("%H:%M:%SZ", time.gmtime(t))


def _when(window: Window, t: float) -> str:
    """HH:MM:SSZ, with the date once the window spans more than a day."""
    if window.started is not None and window.ended is not None and window.ended - window.started > 86400:
        return time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(t))
    return clock(t)


def partial_note(window: Window) -> str:
    """The marker every message and report carries for a window shorter than asked."""
    if not window.partial:
        return ""
    asked = f" of {format_duration(window.planned)}" if window.planned else ""
    why = f", {window.stop_reason}" if window.stop_reason else ""
    return f"PARTIAL window (covered {format_duration(window.covered)}{asked}{why}): "


def _no_samples(window: Window, service: str, criterion: str, unit: Unit, limit: float) -> Verdict | None:
    matched = len(window.containers_of(service))
    if matched and len(window.series(service)):
        return None
    detail = f"matched {matched} containers" if matched == 0 else f"{matched} containers matched but never sampled"
    return Verdict(service, criterion, "failed", f"{partial_note(window)}{service}: no samples: {detail}",
                   None, limit, unit, 0)


def _cpu_values(window: Window, service: str) -> tuple[FloatArray, FloatArray]:
    series = window.series(service)
    valid = ~np.isnan(series.cpu)
    return series.times[valid], series.cpu[valid]


def _no_cpu(window: Window, service: str, criterion: str, limit: float) -> Verdict:
    return Verdict(service, criterion, "skipped",
                   f"{partial_note(window)}{service}: no CPU figure: a CPU rate needs two readings of a container "
                   "and the window has one", None, limit, "cores", 0)


def _scope(window: Window, service: str, budgets: Budgets) -> str:
    if service != TOTAL:
        n = len({c.id for c in window.containers_of(service)})
        return f" (sum of {n} containers)" if n > 1 else ""
    unbudgeted = [s for s in window.services() if s not in budgets.names]
    return f"; includes unbudgeted: {', '.join(unbudgeted)}" if unbudgeted else ""


def cpu_p99(window: Window, budget: ServiceBudget, budgets: Budgets) -> Verdict:
    name, limit = budget.name, budget.cpu
    missing = _no_samples(window, name, "cpu_p99", "cores", limit)
    if missing:
        return missing
    times, cpu = _cpu_values(window, name)
    if cpu.size == 0:
        return _no_cpu(window, name, "cpu_p99", limit)
    p = budget.cpu_percentile
    value = float(np.percentile(cpu, p))
    over = int(np.count_nonzero(cpu > limit))
    worst = int(np.argmax(cpu))
    label = f"CPU p{p:g}"
    passed = value <= limit
    relation = "<=" if passed else ">"
    message = (
        f"{partial_note(window)}{name}: {label} {value:.2f} cores {relation} budget {limit:.2f} "
        f"({(value / limit - 1) * 100:+.1f}%); {over} of {cpu.size} samples above budget; "
        f"worst {cpu[worst]:.2f} at {_when(window, times[worst])}{_scope(window, name, budgets)}"
    )
    return Verdict(name, "cpu_p99", "passed" if passed else "failed", message, value, limit, "cores", int(cpu.size))


def cpu_spike(window: Window, budget: ServiceBudget, budgets: Budgets) -> Verdict:
    name = budget.name
    limit = budget.spike_factor * budget.cpu
    missing = _no_samples(window, name, "cpu_spike", "cores", limit)
    if missing:
        return missing
    times, cpu = _cpu_values(window, name)
    if cpu.size == 0:
        return _no_cpu(window, name, "cpu_spike", limit)
    worst = int(np.argmax(cpu))
    value = float(cpu[worst])
    spikes = int(np.count_nonzero(cpu >= limit))
    passed = value < limit
    relation = "<" if passed else ">="
    message = (
        f"{partial_note(window)}{name}: CPU max {value:.2f} cores {relation} spike limit {limit:.2f} "
        f"({budget.spike_factor:g}x budget {budget.cpu:.2f}) at {_when(window, times[worst])}; "
        f"{spikes} of {cpu.size} samples at or above the limit{_scope(window, name, budgets)}"
    )
    return Verdict(name, "cpu_spike", "passed" if passed else "failed", message, value, limit, "cores",
                   int(cpu.size))


def ram_max(window: Window, budget: ServiceBudget, budgets: Budgets) -> Verdict:
    name, limit = budget.name, float(budget.ram)
    missing = _no_samples(window, name, "ram_max", "bytes", limit)
    if missing:
        return missing
    series = window.series(name)
    valid = ~np.isnan(series.ram)
    ram, times = series.ram[valid], series.times[valid]
    if ram.size == 0:
        return Verdict(name, "ram_max", "skipped", f"{partial_note(window)}{name}: no RAM figure in any sample",
                       None, limit, "bytes", 0)
    worst = int(np.argmax(ram))
    value = float(ram[worst])
    over = int(np.count_nonzero(ram > limit))
    passed = value <= limit
    relation = "<=" if passed else ">"
    message = (
        f"{partial_note(window)}{name}: RAM max {format_size(value)} {relation} budget "
        f"{format_budget_size(int(limit))} ({(value / limit - 1) * 100:+.1f}%) at {_when(window, times[worst])}; "
        f"{over} of {ram.size} samples above budget{_scope(window, name, budgets)}"
    )
    return Verdict(name, "ram_max", "passed" if passed else "failed", message, value, limit, "bytes", int(ram.size))


def restarts(window: Window, budget: ServiceBudget, budgets: Budgets) -> Verdict:
    name, limit = budget.name, float(budget.max_restarts)
    missing = _no_samples(window, name, "restarts", "count", limit)
    if missing:
        return missing
    if window.restarts_unobservable:
        return Verdict(name, "restarts", "skipped",
                       f"{partial_note(window)}{name}: restarts and OOM kills cannot be judged: "
                       f"{window.restarts_unobservable}", None, limit, "count", 0)
    events = [e for e in window.events_of(name) if e.kind in RESTART_KINDS or e.kind == "oom_kill"]
    count = sum(1 for e in events if e.kind in RESTART_KINDS)
    ooms = sum(1 for e in events if e.kind == "oom_kill")
    passed = count <= budget.max_restarts and ooms == 0
    what = "; ".join(
        f"{e.kind} at {_when(window, e.time)}" + (f", {e.detail}" if e.detail else "") for e in events
    )
    summary = f"{count} restart{'s' if count != 1 else ''} (max {budget.max_restarts}), {ooms} OOM kill" + (
        "s" if ooms != 1 else "")
    message = f"{partial_note(window)}{name}: {summary}" + (f": {what}" if what else "")
    return Verdict(name, "restarts", "passed" if passed else "failed", message, float(count), limit, "count",
                   len(window.series(name)))


CRITERIA: dict[str, Callable[[Window, ServiceBudget, Budgets], Verdict]] = {
    "cpu_p99": cpu_p99,
    "cpu_spike": cpu_spike,
    "ram_max": ram_max,
    "restarts": restarts,
}


def judge(window: Window, budgets: Budgets, service: str, criterion: str) -> Verdict:
    budget = budgets.total if service == TOTAL else budgets.service(service)
    return CRITERIA[criterion](window, budget, budgets)


def judge_all(window: Window, budgets: Budgets) -> dict[tuple[str, str], Verdict]:
    verdicts = {}
    for budget in budgets.services:
        for criterion in SERVICE_CRITERIA:
            verdicts[budget.name, criterion] = judge(window, budgets, budget.name, criterion)
    for criterion in TOTAL_CRITERIA:
        verdicts[TOTAL, criterion] = judge(window, budgets, TOTAL, criterion)
    return verdicts


def allowed_over(budget: ServiceBudget, planned_rounds: int) -> int:
    """How many samples may sit above the CPU budget in a window of `planned_rounds` before the
    percentile must exceed it, whatever the remaining samples are."""
    # np.percentile's linear rule reads sorted[floor(k)] and sorted[floor(k) + 1] at k = p/100 * (N - 1):
    # once more than N - floor(k) - 1 samples exceed the budget, both of those are over it.
    rank = math.floor(budget.cpu_percentile / 100 * (planned_rounds - 1))
    return max(planned_rounds - rank - 1, 0)
