"""Deciding, round by round, when a verdict can no longer change, so a live window can end early.

The tracker sees each round's per-service sums (as `Window.series` will compute them) and lifecycle events,
and keeps O(1) state per service: no series is recomputed. A failure is final when:

- RAM: one sample over budget (`ram_max` takes the largest);
- an OOM kill, or more restarts than `max_restarts` (`restarts` only counts up);
- a CPU sample at or above `spike_factor` x budget (`cpu_spike` takes the largest);
- more CPU samples above budget than `criteria.allowed_over` allows for the whole planned window: the
  percentile is then over budget whatever the remaining samples are, and with fewer samples too.

It also tracks which service stands nearest to its budget, for the progress line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from .budgets import Budgets, ServiceBudget
from .criteria import allowed_over
from .units import format_budget_size, format_size
from .window import RESTART_KINDS, TOTAL, Event

# Weight of the newest round in the CPU moving average the progress line shows (about a minute at 1 s).
_EWMA_WEIGHT = 1 / 60


@dataclass
class _State:
    budget: ServiceBudget
    allowed: int
    spike: bool
    restarts: bool
    over: int = 0
    ram_peak: float = 0.0
    cpu_average: float = math.nan
    restart_count: int = 0


class FailFastTracker:
    """Feed it every round (`add_round`) and event (`add_event`); `reason` is set once a verdict is final."""

    def __init__(self, budgets: Budgets, planned_rounds: int) -> None:
        self._states: dict[str, _State] = {
            b.name: _State(b, allowed_over(b, planned_rounds), spike=True, restarts=True) for b in budgets.services
        }
        total = budgets.total
        self._states[TOTAL] = _State(total, allowed_over(total, planned_rounds), spike=False, restarts=False)
        self.reason: str | None = None

    def add_round(self, t: float, sums: Mapping[str, tuple[float, float]]) -> str | None:
        """`sums`: service -> (CPU cores, RAM bytes) summed over its containers this round, NaN where unknown;
        TOTAL included. Returns the first final failure seen so far."""
        # Services first, TOTAL last: the first reason named is the most specific one.
        for service, state in self._states.items():
            if service not in sums:
                continue
            cpu, ram = sums[service]
            budget = state.budget
            if not math.isnan(ram):
                state.ram_peak = max(state.ram_peak, ram)
                if ram > budget.ram:
                    self._fail(f"{service} RAM {format_size(ram)} > budget {format_budget_size(budget.ram)}")
            if math.isnan(cpu):
                continue
            state.cpu_average = cpu if math.isnan(state.cpu_average) else (
                state.cpu_average + _EWMA_WEIGHT * (cpu - state.cpu_average))
            if state.spike and cpu >= budget.spike_factor * budget.cpu:
                self._fail(f"{service} CPU spike {cpu:.2f} cores >= {budget.spike_factor:g}x budget {budget.cpu:.2f}")
            if cpu > budget.cpu:
                state.over += 1
                if state.over > state.allowed:
                    self._fail(f"{service} CPU above budget {budget.cpu:.2f} in {state.over} samples, more than "
                               f"the {state.allowed} that CPU p{budget.cpu_percentile:g} allows in the planned window")
        return self.reason

    def add_event(self, event: Event) -> str | None:
        state = self._states.get(event.service or "")
        if state is None or not state.restarts:
            return self.reason
        if event.kind == "oom_kill":
            self._fail(f"{event.service} OOM kill ({event.container})")
        elif event.kind in RESTART_KINDS:
            state.restart_count += 1
            if state.restart_count > state.budget.max_restarts:
                self._fail(f"{event.service} {state.restart_count} restarts > max {state.budget.max_restarts}")
        return self.reason

    def _fail(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def nearest(self) -> str | None:
        """The service using the largest share of a budget: peak RAM, or CPU averaged over the last minute."""
        best: tuple[float, str] | None = None
        for service, state in self._states.items():
            budget = state.budget
            ram_share = state.ram_peak / budget.ram
            cpu_share = 0.0 if math.isnan(state.cpu_average) else state.cpu_average / budget.cpu
            share, what = (ram_share, "RAM peak") if ram_share >= cpu_share else (cpu_share, "CPU")
            if share > 0 and (best is None or share > best[0]):
                best = (share, f"{service} {what} {share:.0%} of budget")
        if best is None:
            return None
        return ("over: " if best[0] > 1 else "nearest: ") + best[1]
