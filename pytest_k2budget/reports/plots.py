"""A service's CPU and RAM over the window as a small SVG, with its budget lines, for the HTML report.

matplotlib is used through `Figure` alone (never pyplot), so a plot leaves no global state behind and needs
no display. Long windows are downsampled to a min/max envelope per time bucket: every bucket keeps its
extremes, so a single one-second spike in a 24 h window still reaches its height on the plot.
"""

from __future__ import annotations

import io
import re
import time
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..budgets import ServiceBudget
from ..criteria import SERVICE_CRITERIA, TOTAL_CRITERIA
from ..window import TOTAL, FloatArray, Window

_CPU_COLOUR = "#1f77b4"
_RAM_COLOUR = "#2ca02c"
_BUDGET_COLOUR = "#d62728"
_SPIKE_COLOUR = "#ff7f0e"
_GAP_COLOUR = "#d0d0d0"
# matplotlib writes path coordinates with up to 6 decimals and a line per point; a tenth of a point is finer
# than a screen shows, and SVG's path grammar needs no space around a command letter or before a minus.
_PATH_RE = re.compile(r' d="([^"]*)"')
_DIGITS_RE = re.compile(r"(\d\.\d)\d+")
_SPACE_RE = re.compile(r"\s*([MLQCz])\s*|\s+(-)|\s+")


@dataclass(frozen=True)
class Envelope:
    """What is drawn for one series: x (seconds since the window start) and the low and high edge.

    Without downsampling `low` and `high` are the same samples. NaN breaks the line: a gap in sampling
    (an empty bucket, or a step between samples longer than 1.5 intervals) is drawn as a gap.
    """

    x: FloatArray
    low: FloatArray
    high: FloatArray
    downsampled: bool


def envelope(times: FloatArray, values: FloatArray, start: float, interval: float, max_points: int) -> Envelope:
    """At most `max_points` values: the samples themselves, or the min and max of each of max_points // 2
    equal time buckets (NaN for a bucket without samples)."""
    if max_points < 2:
        raise ValueError("max_points must be at least 2")
    x = np.asarray(times, np.float64) - start
    v = np.asarray(values, np.float64)
    if x.size <= max_points:
        breaks = np.flatnonzero(np.diff(x) > 1.5 * interval) + 1
        x = np.insert(x, breaks, np.nan)
        v = np.insert(v, breaks, np.nan)
        return Envelope(x, v, v, False)
    buckets = max_points // 2
    span = float(x[-1] - x[0]) or 1.0
    width = span / buckets
    index = np.minimum(((x - x[0]) / width).astype(np.int64), buckets - 1)
    starts = np.searchsorted(index, np.arange(buckets))
    filled = np.bincount(index, minlength=buckets) > 0
    low = np.full(buckets, np.nan)
    high = np.full(buckets, np.nan)
    # fmin/fmax skip NaN samples (a CPU rate's first round); a bucket of only NaN stays NaN.
    low[filled] = np.fmin.reduceat(v, starts[filled])
    high[filled] = np.fmax.reduceat(v, starts[filled])
    centres = x[0] + (np.arange(buckets) + 0.5) * width
    return Envelope(centres, low, high, True)


def service_plot_svg(window: Window, budget: ServiceBudget, *, max_points: int = 600) -> str:
    """Two panels over the window: CPU cores with the budget and spike lines, RAM with the budget line."""
    series = window.series(budget.name)
    start = window.started if window.started is not None else 0.0
    hours = window.covered >= 2 * 3600
    scale = 3600.0 if hours else 60.0
    gib = budget.ram >= 1 << 30
    ram_unit = float(1 << 30 if gib else 1 << 20)

    # Text as <text> elements rather than glyph paths, a short font list (each text element repeats it), stable
    # ids, and (at savefig) no timestamp: small, reproducible SVGs.
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "k2budget", "font.size": 8.0,
                                "font.sans-serif": ["DejaVu Sans", "Arial"], "path.simplify": True}):
        figure = Figure(figsize=(6.4, 3.4))
        cpu_axes, ram_axes = figure.subplots(2, 1, sharex=True)
        panels: tuple[tuple[Axes, FloatArray, float, float | None, str, str], ...] = (
            (cpu_axes, series.cpu, budget.cpu, _spike_limit(budget), "CPU (cores)", _CPU_COLOUR),
            (ram_axes, series.ram / ram_unit, budget.ram / ram_unit, None, f"RAM ({'GiB' if gib else 'MiB'})",
             _RAM_COLOUR),
        )
        for axes, values, limit, spike, label, colour in panels:
            _panel(axes, envelope(series.times, values, start, window.interval, max_points), scale, colour)
            axes.axhline(limit, color=_BUDGET_COLOUR, linestyle="--", linewidth=0.9, label="budget")
            if spike is not None:
                axes.axhline(spike, color=_SPIKE_COLOUR, linestyle=":", linewidth=0.9, label="spike limit")
            for gap in window.gaps:
                axes.axvspan((gap.start - start) / scale, (gap.end - start) / scale, color=_GAP_COLOUR, linewidth=0,
                             zorder=0)
            finite = values[np.isfinite(values)]
            top = max(float(finite.max()) if finite.size else 0.0, spike or limit)
            axes.set_ylim(0, top * 1.08)
            axes.set_ylabel(label)
            axes.grid(True, linewidth=0.3, alpha=0.5)
        if not len(series):
            cpu_axes.text(0.5, 0.5, "no samples", transform=cpu_axes.transAxes, ha="center", va="center")
        ram_axes.set_xlim(0, max(window.covered, window.interval) / scale)
        since = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(start)) if window.started is not None else "start"
        ram_axes.set_xlabel(f"{'hours' if hours else 'minutes'} since {since}")
        cpu_axes.set_title(budget.name, fontsize=9, loc="left")
        cpu_axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), fontsize=6, frameon=False, ncols=2,
                        borderaxespad=0.2)
        figure.tight_layout(pad=0.4)
        out = io.StringIO()
        figure.savefig(out, format="svg", metadata={"Date": None})
    return _PATH_RE.sub(_round_path, out.getvalue())


def _round_path(match: re.Match[str]) -> str:
    return ' d="' + _SPACE_RE.sub(_compact, _DIGITS_RE.sub(r"\1", match.group(1))).strip() + '"'


def _compact(match: re.Match[str]) -> str:
    return match.group(1) or match.group(2) or " "


def _spike_limit(budget: ServiceBudget) -> float | None:
    judged = TOTAL_CRITERIA if budget.name == TOTAL else SERVICE_CRITERIA
    return budget.spike_factor * budget.cpu if "cpu_spike" in judged else None


def _panel(axes: Axes, env: Envelope, scale: float, colour: str) -> None:
    x = env.x / scale
    if env.downsampled:
        # Drawn as a band between each bucket's min and max; its outline keeps a flat band visible.
        axes.fill_between(x, env.low, env.high, color=colour, linewidth=0.6, alpha=0.9)
    else:
        axes.plot(x, env.low, color=colour, linewidth=0.8)
