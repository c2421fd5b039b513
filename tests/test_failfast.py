"""Fail-fast stops only on failures that can no longer change, and agrees with the criteria that judge later."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import budgets_for
from pytest_k2budget import criteria
from pytest_k2budget.failfast import FailFastTracker
from pytest_k2budget.sources.docker import round_sums
from pytest_k2budget.window import TOTAL, Event, Window

MiB = 1 << 20
BUDGETS = budgets_for("p", "  web: {cpu: 1.0, ram: 100MB, max_restarts: 1}\n  db: {cpu: 2.0, ram: 1GB}\n",
                      "  total: {cpu: 10, ram: 10GB}\n")
NAN = math.nan


def test_ram_over_budget_is_final_at_once_and_equal_is_not() -> None:
    tracker = FailFastTracker(BUDGETS, 1000)
    assert tracker.add_round(0, {"web": (0.1, 100 * MiB)}) is None
    assert tracker.add_round(1, {"web": (0.1, 100 * MiB + 1)}) == "web RAM 100.00MiB > budget 100MB"


def test_spike_at_the_factor_is_final_just_below_is_not() -> None:
    tracker = FailFastTracker(BUDGETS, 1000)
    assert tracker.add_round(0, {"db": (3.99, 1.0)}) is None
    assert tracker.add_round(1, {"db": (4.0, 1.0)}) == "db CPU spike 4.00 cores >= 2x budget 2.00"


@pytest.mark.parametrize("planned", [10, 100, 288, 1000])
def test_cpu_over_budget_stops_exactly_when_the_percentile_must_fail(planned: int) -> None:
    """Sound: with one more sample over budget the percentile is over whatever the rest. Tight: with the allowed
    count over, by a little, the rest at 0, it can still pass."""
    allowed = criteria.allowed_over(BUDGETS.service("web"), planned)
    tracker = FailFastTracker(BUDGETS, planned)
    for i in range(allowed):
        assert tracker.add_round(i, {"web": (1.5, 1.0)}) is None
    reason = tracker.add_round(allowed, {"web": (1.5, 1.0)})
    assert reason is not None and f"in {allowed + 1} samples" in reason
    passing = np.array([1.000001] * allowed + [0.0] * (planned - allowed))
    failing = np.array([1.5] * (allowed + 1) + [0.0] * (planned - allowed - 1))
    assert np.percentile(passing, 99) <= 1.0 < np.percentile(failing, 99)


def test_nan_cpu_counts_nothing_and_ram_still_does() -> None:
    tracker = FailFastTracker(BUDGETS, 10)
    for i in range(20):
        assert tracker.add_round(i, {"web": (NAN, 1.0)}) is None
    assert tracker.add_round(21, {"web": (NAN, 200 * MiB)}) is not None


def test_oom_kill_and_restarts_beyond_max_are_final() -> None:
    tracker = FailFastTracker(BUDGETS, 10)
    assert tracker.add_event(Event(0, "restart", "p-web-1", "web")) is None
    assert tracker.add_event(Event(0, "recreate", "p-web-2", "web")) == "web 2 restarts > max 1"
    other = FailFastTracker(BUDGETS, 10)
    assert other.add_event(Event(0, "die", "p-db-1", "db", "exit code 137")) is None
    assert other.add_event(Event(0, "oom_kill", "p-db-1", "db")) == "db OOM kill (p-db-1)"


def test_unbudgeted_services_never_stop_the_window_but_total_does() -> None:
    tracker = FailFastTracker(BUDGETS, 10)
    assert tracker.add_event(Event(0, "oom_kill", "p-cache-1", "cache")) is None
    assert tracker.add_round(0, {"cache": (50.0, 50e9)}) is None
    assert tracker.add_round(1, {"cache": (1.0, 11 << 30), TOTAL: (1.0, 11 << 30)}) == (
        "TOTAL RAM 11.00GiB > budget 10GB")


def test_first_reason_is_kept_and_services_come_before_total() -> None:
    tracker = FailFastTracker(BUDGETS, 10)
    assert tracker.add_round(0, {TOTAL: (1.0, 20 << 30), "db": (1.0, 2 << 30)}) == "db RAM 2.00GiB > budget 1GB"
    assert tracker.add_round(1, {"web": (1.0, 1 << 30)}) == "db RAM 2.00GiB > budget 1GB"


def test_nearest_names_the_largest_share_of_a_budget() -> None:
    tracker = FailFastTracker(BUDGETS, 10)
    assert tracker.nearest() is None
    tracker.add_round(0, {"web": (0.5, 80 * MiB), "db": (1.0, 100 * MiB)})
    assert tracker.nearest() == "nearest: web RAM peak 80% of budget"
    tracker.add_round(1, {"db": (100.0, 100 * MiB)})
    assert tracker.nearest() is not None and tracker.nearest().startswith("over: db CPU")  # type: ignore[union-attr]


def test_round_sums_match_window_series() -> None:
    """The tracker's per-round sums are what the criteria will read from Window.series."""
    rng = np.random.default_rng(7)
    window = Window("test", 1.0)
    keys = [window.add_container(f"id{i}", f"p-{s}-{i}", s).key
            for i, s in enumerate(["web", "web", "db", "cache"])]
    sums_by_round = []
    for t in range(50):
        rows = [(k, NAN if rng.random() < 0.3 else float(rng.random()), NAN if rng.random() < 0.2 else 1e6 * k)
                for k in keys if rng.random() < 0.8]
        window.add_round(float(t), rows)
        sums_by_round.append(round_sums(window, rows))
    for service in ("web", "db", "cache", TOTAL):
        series = window.series(service)
        mine = [(float(t), s[service]) for t, s in enumerate(sums_by_round) if service in s]
        assert [t for t, _ in mine] == series.times.tolist()
        np.testing.assert_allclose([c for _, (c, _) in mine], series.cpu, rtol=1e-6)
        np.testing.assert_allclose([r for _, (_, r) in mine], series.ram)
