"""What a sampler at a given interval and phase would have seen of a burst, simulated from a live 1 s series.

The live series is turned into a piecewise-constant truth on a 10 ms grid: each sample's CPU is the average
over the interval before it (that is what a differenced counter gives), each RAM figure holds over the same
interval. It is placed inside a 10-minute window whose other minutes carry the container's idle level. A
sampler reads at phase + k x interval: its CPU figure is the average over the `span` before each read (its own
interval for the plugin, which differences its own reads; 1 s for `docker stats --no-stream`, which differences
the daemon's two latest 1 s samples), its RAM figure the level at the read. A burst is caught when some read
reaches the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pytest_k2budget.window import FloatArray, Series

STEP = 0.01
WINDOW = 600.0


@dataclass(frozen=True)
class Truth:
    cpu: FloatArray  # cores, per STEP
    ram: FloatArray  # bytes, per STEP
    cumulative: FloatArray  # core-seconds at each grid point (one more than cpu)


def truth(series: Series, interval: float, place_at: float = 285.0) -> Truth:
    times, cpu, ram = series.times, series.cpu, series.ram
    ok = ~np.isnan(cpu) & ~np.isnan(ram)
    times, cpu, ram = times[ok], cpu[ok], ram[ok]
    n = int(WINDOW / STEP)
    grid_cpu = np.full(n, float(np.median(cpu)))
    grid_ram = np.full(n, float(np.median(ram)))
    offset = place_at - (times[0] - interval)
    for t, c, r in zip(times, cpu, ram, strict=True):
        lo, hi = round((t - interval + offset) / STEP), round((t + offset) / STEP)
        grid_cpu[max(lo, 0):min(hi, n)] = c
        grid_ram[max(lo, 0):min(hi, n)] = r
    return Truth(grid_cpu, grid_ram, np.concatenate([[0.0], np.cumsum(grid_cpu) * STEP]))


def miss_fraction(truth: Truth, interval: float, span: float, cpu_limit: float, ram_limit: float,
                  phases: int = 1000) -> tuple[float, float]:
    """Shares of phases in [0, interval) whose reads never reach `cpu_limit` / never exceed `ram_limit`."""
    n = truth.cpu.size
    span_steps = round(span / STEP)
    missed_cpu = missed_ram = 0
    for phase in np.linspace(0.0, interval, phases, endpoint=False):
        reads = np.round((phase + np.arange(0.0, WINDOW, interval)) / STEP).astype(np.int64)
        reads = reads[(reads >= span_steps) & (reads < n)]
        cpu = (truth.cumulative[reads] - truth.cumulative[reads - span_steps]) / span
        missed_cpu += int(not np.any(cpu >= cpu_limit))
        missed_ram += int(not np.any(truth.ram[reads] > ram_limit))
    return missed_cpu / phases, missed_ram / phases
