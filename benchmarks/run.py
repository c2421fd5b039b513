"""The pytest-k2budget benchmark: one command, writes benchmarks/RESULTS.md and benchmarks/growth.svg.

    python benchmarks/run.py            # everything, about 14 minutes on 2 cores
    python benchmarks/run.py --quick    # every section at a smaller size, about 4 minutes
    python benchmarks/run.py --only window,replay,html   # offline sections only, no Docker Engine needed

Every figure is the median of --runs runs (default 5) after a warm-up run; each ratio is taken against a
peer measured in the same run. Needs a local Docker Engine (live sections), busybox-static, matplotlib and
pytest-html.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import fidelity, live, offline
from benchmarks.common import ROOT, Timed, machine, median

SECTIONS = ("overhead", "latency", "growth", "fidelity", "window", "judging", "replay", "html")
HERE = ROOT / "benchmarks"


@dataclass
class Config:
    runs: int
    overhead_seconds: float
    growth_seconds: float
    counts: list[int]
    window_containers: int
    window_rounds: int
    judging_lengths: list[tuple[str, int]]
    csv_containers: int
    csv_rounds: int
    html_rounds: int
    fidelity_seconds: float
    quick: bool


def config(args: argparse.Namespace) -> Config:
    if args.quick:
        return Config(args.runs, 3.0, 2.0, [1, 15], 50, 86400, [("1 h", 3600), ("24 h", 86400)], 50, 1728, 3600,
                      24.0, True)
    return Config(args.runs, args.overhead_seconds, 4.0, [1, 15, 50, 100], 200, 86400,
                  [("1 h", 3600), ("24 h", 86400), ("7 d", 7 * 86400)], 50, 17280, 86400, 24.0, False)


@dataclass
class Results:
    machine: dict[str, str]
    config: Config
    cpu: dict[int, dict[str, list[live.Segment]]] = field(default_factory=dict)
    latency: dict[int, dict[str, Timed]] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)
    window: dict[str, Any] = field(default_factory=dict)
    judging: list[dict[str, Any]] = field(default_factory=list)
    replay: dict[str, Any] = field(default_factory=dict)
    html: dict[str, Any] = field(default_factory=dict)
    wall: float = 0.0


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- running ---------------------------------------------------------------------------------------


def run_live(cfg: Config, only: set[str], res: Results) -> None:
    with live.bench_stack() as stack:
        if "fidelity" in only:
            log("fidelity: a 2 s CPU burst and a 2 s RAM spike, sampled live at 1 s")
            window, budgets = live.fidelity_run(stack, cfg.fidelity_seconds)
            res.fidelity = fidelity_figures(window, budgets)
        for n in cfg.counts if "growth" in only else [1, 15]:
            names = stack.idle(n)
            time.sleep(2.0)  # let the new containers' start settle before measuring
            if "latency" in only or "growth" in only:
                log(f"round latency, {n} containers")
                res.latency[n] = {
                    "cgroup": Timed(live.round_latency(stack.project, n, "cgroup", 20, 0.2, warm=5)),
                    "api": Timed(live.round_latency(stack.project, n, "api", cfg.runs, 1.0)),
                    "docker stats --no-stream": Timed(live.docker_stats_no_stream(names, cfg.runs)),
                }
            modes: tuple[str, ...]
            if n == 15 and "overhead" in only:
                modes, seconds = ("idle", "cgroup", "api", "docker-stats"), cfg.overhead_seconds
            elif "growth" in only:
                modes, seconds = ("idle", "cgroup", "api"), cfg.growth_seconds
            else:
                continue
            res.cpu[n] = {}
            for mode in modes:
                log(f"CPU, {n} containers, {mode}: {cfg.runs} x {seconds:g} s")
                res.cpu[n][mode] = live.measure_cpu(mode, stack.project, names, 4.0, cfg.runs, seconds)


def fidelity_figures(window: Any, budgets: Any) -> dict[str, Any]:
    from pytest_k2budget import criteria

    service = "burst"
    series = window.series(service)
    spike = criteria.judge(window, budgets, service, "cpu_spike")
    ram = criteria.judge(window, budgets, service, "ram_max")
    budget = budgets.service(service)
    cpu_limit = budget.spike_factor * budget.cpu
    truth = fidelity.truth(series, window.interval)
    table = []
    for label, interval, span in [("plugin, 1 s (default)", 1.0, 1.0), ("plugin, 2 s", 2.0, 2.0),
                                  ("plugin, 5 s", 5.0, 5.0), ("plugin, 10 s", 10.0, 10.0),
                                  ("plugin, 60 s", 60.0, 60.0),
                                  ("step doc loop: docker stats --no-stream every 300 s", 300.0, 1.0)]:
        cpu_miss, ram_miss = fidelity.miss_fraction(truth, interval, span, cpu_limit, float(budget.ram))
        table.append((label, interval, cpu_miss, ram_miss))
    return {"spike": spike, "ram": ram, "series": series, "cpu_limit": cpu_limit, "budget": budget,
            "table": table}


def run_offline(cfg: Config, only: set[str], res: Results) -> None:
    if "window" in only:
        log(f"window: {cfg.window_containers} containers x {cfg.window_rounds} rounds")
        res.window = offline.window_scale(cfg.window_containers, cfg.window_rounds, cfg.runs)
    if "judging" in only:
        log("judging vs window length")
        res.judging = offline.judging_growth(cfg.judging_lengths, 13, cfg.runs)
    with tempfile.TemporaryDirectory(prefix="k2bench-") as tmp:
        if "replay" in only:
            log(f"replay of a step-doc CSV: {cfg.csv_containers} containers x {cfg.csv_rounds} rounds")
            res.replay = offline.replay_csv(Path(tmp), cfg.csv_containers, cfg.csv_rounds, cfg.runs)
        if "html" in only:
            log(f"HTML report: 13 services x {cfg.html_rounds} rounds")
            res.html = offline.html_report(Path(tmp), cfg.html_rounds, cfg.runs)


# --- figures ---------------------------------------------------------------------------------------


def pct(cpu_seconds: float, wall: float) -> float:
    return 100.0 * cpu_seconds / wall


@dataclass(frozen=True)
class Overhead:
    """Per-run % of one core: own process, extra on the daemon side (over the idle runs' median), total."""

    own: list[float]
    extra: list[float]

    @property
    def total(self) -> list[float]:
        return [o + e for o, e in zip(self.own, self.extra, strict=True)]


def overhead(segments: dict[str, list[live.Segment]], mode: str) -> Overhead:
    idle = median([pct(s.daemon, s.wall) for s in segments["idle"]])
    runs = segments[mode]
    return Overhead([pct(s.own, s.wall) for s in runs], [pct(s.daemon, s.wall) - idle for s in runs])


def verdict(ok: bool) -> str:
    return "**pass**" if ok else "**MISS**"


def check(value: float, target: float) -> str:
    """pass, or MISS with how far over the target the figure is."""
    return "**pass**" if value <= target else f"**MISS** ({value / target:.1f}x the target)"


def fmt_list(values: list[float], f: str = "{:.3f}") -> str:
    return ", ".join(f.format(v) for v in values)


def write_results(res: Results, out: Path, plot: Path | None) -> None:
    cfg = res.config
    lines = ["# pytest-k2budget benchmark results", "",
             f"Written by `python benchmarks/run.py{' --quick' if cfg.quick else ''}` "
             f"in {res.wall / 60:.1f} min. Every figure is the median of {cfg.runs} runs after a warm-up; "
             "each ratio is against a peer measured in the same run. Raw runs follow each table.", "",
             "## Machine", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in res.machine.items()]
    lines += [""]
    summary: list[str] = []

    if 15 in res.cpu and "docker-stats" in res.cpu[15]:
        seg = res.cpu[15]
        peer = overhead(seg, "docker-stats")
        secs = sum(s.wall for s in seg["cgroup"])
        lines += ["## 1. Sampling overhead: 15 idle containers at 1 s", "",
                  f"{cfg.runs} consecutive runs of {cfg.overhead_seconds:g} s each per mode ({secs:.0f} s of "
                  "sampling in all), after a 4 s warm-up. *Own*: user+sys CPU of the sampling process (the "
                  "plugin's live burn-in in a subprocess, recording and event stream included; for the peer, the "
                  "`docker stats` CLI). *Daemon extra*: CPU of dockerd + containerd + the containers' shims "
                  "over the same run, less the median of idle runs of the same length (nothing sampling). "
                  "Figures in % of one core. The idle runs scatter by about 1% of a core (raw runs below), so "
                  "a daemon extra smaller than that, or negative, is below what these runs resolve; the own "
                  "column is measured directly.", "",
                  "| sampler | own | daemon extra | total | target <= 1% | vs docker stats (target <= 0.5x) |",
                  "|---|---|---|---|---|---|"]
        for mode, label in (("cgroup", "plugin, cgroup files (default on the host)"),
                            ("api", "plugin, Engine API one-shot stats"),
                            ("docker-stats", "`docker stats` streaming (peer)")):
            o = overhead(seg, mode)
            total, ratio = median(o.total), median(o.total) / median(peer.total)
            target = check(total, 1.0) if mode != "docker-stats" else "-"
            vs = f"{ratio:.2f}x {check(ratio, 0.5)}" if mode != "docker-stats" else "1x"
            lines.append(f"| {label} | {median(o.own):.3f}% | {median(o.extra):.3f}% | {total:.3f}% | {target} "
                         f"| {vs} |")
            if mode != "docker-stats":
                summary.append(f"| 1 | overhead, {mode} path | {total:.3f}% of a core; {ratio:.2f}x docker stats "
                               f"| <= 1%; <= 0.5x | {check(total, 1.0)} / {check(ratio, 0.5)} |")
        idle_daemon = [pct(s.daemon, s.wall) for s in seg["idle"]]
        lines += ["", "Raw runs (% of one core):", "",
                  f"- idle, daemon side: {fmt_list(idle_daemon)}"]
        for mode in ("cgroup", "api", "docker-stats"):
            o = overhead(seg, mode)
            lines.append(f"- {mode}: own {fmt_list(o.own)}; daemon extra {fmt_list(o.extra)}")
        lines += ["", "Over the whole {:.0f} s: plugin cgroup path {:.3f} CPU-s own + {:.3f} daemon-side; API path "
                  "{:.3f} + {:.3f}; docker stats {:.3f} + {:.3f}; idle daemon side {:.3f}.".format(
                      secs, *[sum(getattr(s, a) for s in seg[m]) for m in ("cgroup", "api", "docker-stats")
                              for a in ("own", "daemon")], sum(s.daemon for s in seg["idle"])), ""]

    if 15 in res.latency and 1 in res.latency:
        lat1, lat15 = res.latency[1], res.latency[15]
        no_stream = lat15["docker stats --no-stream"].median
        lines += ["## 2. Round latency", "",
                  "Wall time of one sampling round (read every container, turn the readings into samples, append "
                  "the round to the window and the recording), in-process; cgroup rounds 0.2 s apart after 5 "
                  "warm-up rounds (20 measured), API rounds 1 s apart as in a live run. Peer: one "
                  "`docker stats --no-stream` call over the same containers (the step doc's loop).", "",
                  "| sampler | 1 container | 15 containers | 15 / 1 (target <= 1.5x) "
                  "| 15 vs docker stats --no-stream (target <= 0.1x) |", "|---|---|---|---|---|"]
        for mode in ("cgroup", "api"):
            a, b = lat1[mode].median, lat15[mode].median
            lines.append(f"| {mode} | {a * 1e3:.2f} ms | {b * 1e3:.2f} ms | {b / a:.2f}x {check(b / a, 1.5)} "
                         f"| {b / no_stream:.4f}x {check(b / no_stream, 0.1)} |")
            summary.append(f"| 2 | round latency, {mode} path | 15/1 = {b / a:.2f}x; {b / no_stream:.4f}x docker "
                           f"stats --no-stream | <= 1.5x; <= 0.1x | {check(b / a, 1.5)} / "
                           f"{check(b / no_stream, 0.1)} |")
        lines.append(f"| docker stats --no-stream | {lat1['docker stats --no-stream'].median * 1e3:.0f} ms "
                     f"| {no_stream * 1e3:.0f} ms | | |")
        c1, c15 = lat1["cgroup"].median, lat15["cgroup"].median
        lines += ["", f"Why the ratios miss. **cgroup**: a round is a fixed {c1 * 1e3:.2f} ms (readings to samples, "
                  "the "
                  "window, one JSON line written and flushed to the recording) plus "
                  f"{(c15 - c1) / 14 * 1e6:.0f} us per container: four cgroup files opened, read and closed in "
                  "turn. The 1.5x ratio presumes per-container costs that overlap, as concurrent API calls do; "
                  "system calls of a few microseconds gain nothing from threads. The reads were made cheaper "
                  "instead (bare os.open/os.read and a key search in memory.stat instead of Path.read_text and "
                  "a parse of every line: the four reads went from about 80 us to 20 us a container; the rest "
                  "is turning each reading into a sample and writing it), and the round stays "
                  f"{c15 * 1e3:.1f} ms at 15 containers, {c15 * 100:.2f}% of the 1 s interval. **API**: one "
                  "one-shot call returns in tens of milliseconds, but once several run at once Engine 20.10 "
                  "answers them at its next 1 s stats collection tick, so the round takes about the interval; "
                  "`docker stats --no-stream` waits for two ticks. A persistent streaming stats connection per "
                  "container would bring the API round to near zero (it would read the last sample each stream "
                  "delivered) but not its cost, which is the daemon's collection (section 1); it is not done, "
                  "and on the Docker host the cgroup path is the default.",
                  "", "Raw runs (ms):", ""]
        for n in (1, 15):
            for mode, timed in res.latency[n].items():
                lines.append(f"- {n} containers, {mode}: {timed.raw(1e3, '{:.2f}')}")
        lines.append("")

    if res.window:
        w = res.window
        per = w["nbytes"] / w["samples"]
        # Fixed: 8 bytes per round for the shared round times, and at most one unfilled 4096-sample chunk per
        # container; anything above that bound would be a per-sample cost above 16 bytes.
        bound = 8 * w["rounds"] + w["containers"] * 4096 * 16
        judge, peer = w["judge"].median, w["peer"].median
        lines += ["## 3. Window scale", "",
                  f"### Sample store and judging: {w['containers']} containers x {w['rounds']} rounds "
                  f"(24 h at 1 s), {w['samples']:,} samples", "",
                  "Filled directly (`Window.add_rounds` + `Window.extend`), one container per service; judged "
                  f"with `criteria.judge_all` over a budgets file for those {w['containers']} services "
                  f"({w['criteria']} verdicts, TOTAL included), each run from the raw columns (series cache "
                  "cleared). Peer: one `np.percentile(x, 99)` over as many float64 values.", "",
                  "| figure | value | target | |", "|---|---|---|---|",
                  f"| `Window.nbytes` | {w['nbytes'] / 2**20:.1f} MiB | | |",
                  f"| bytes per sample (nbytes / samples) | {per:.2f} = 16 + fixed {w['fixed'] / 2**20:.1f} MiB "
                  f"| <= 16 + fixed (fixed <= {bound / 2**20:.1f} MiB) | {check(w['fixed'], bound)} |",
                  f"| fill (add_rounds + extend) | {w['fill']:.2f} s | | |",
                  f"| judge_all | {judge:.2f} s ({judge / peer:.1f}x the peer) | <= 3 s | {check(judge, 3)} |",
                  f"| judge_all peak allocation (tracemalloc) | {w['judge_peak'] / 2**20:.0f} MiB | | |",
                  f"| peer: np.percentile over {w['samples']:,} values | {peer:.3f} s | | |", "",
                  f"Raw runs: judge_all {w['judge'].raw(fmt='{:.3f}')} s; peer {w['peer'].raw(fmt='{:.3f}')} s. "
                  f"The fixed part is the round times ({w['rounds'] * 8 / 2**20:.2f} MiB, 8 bytes a round, shared "
                  "by all containers) and the unfilled tail of each container's last 4096-sample chunk.", ""]
        summary.append(f"| 3 | bytes per sample | 16 + {w['fixed'] / 2**20:.1f} MiB fixed ({per:.2f} overall) "
                       f"| <= 16 + fixed | {check(w['fixed'], bound)} |")
        summary.append(f"| 3 | judge_all, {w['samples'] / 1e6:.1f} M samples | {judge:.2f} s "
                       f"({judge / peer:.1f}x one np.percentile) | <= 3 s | {check(judge, 3)} |")
    if res.replay:
        r = res.replay
        secs, rss = r["seconds"].median, r["rss"].median
        lines += [f"### Replay of a step-doc CSV: {r['containers']} containers x {r['rounds']} rounds "
                  f"(24 h at 5 s), {r['lines']:,} lines, {r['bytes'] / 2**20:.1f} MiB", "",
                  "`load_replay` in a subprocess of its own: time from the call to the window, peak RSS of the "
                  "process (VmHWM; the interpreter, numpy and the plugin are already loaded: "
                  f"{r['rss_before'].median:.0f} MiB before the call). Peer: `for line in file: line.split(\",\")` "
                  "over the same file, also in a subprocess.", "",
                  "| | replay | peer | ratio | target | |", "|---|---|---|---|---|---|",
                  f"| time | {secs:.2f} s | {r['peer_seconds'].median:.2f} s "
                  f"| {secs / r['peer_seconds'].median:.1f}x | <= 2 s | {check(secs, 2)} |",
                  f"| peak RSS | {rss:.0f} MiB | {r['peer_rss'].median:.0f} MiB | "
                  f"{rss / r['peer_rss'].median:.1f}x | <= 300 MB | {check(rss * 2**20, 300e6)} |", "",
                  f"Raw runs: replay {r['seconds'].raw(fmt='{:.3f}')} s, {r['rss'].raw(fmt='{:.0f}')} MiB; "
                  f"peer {r['peer_seconds'].raw(fmt='{:.3f}')} s, {r['peer_rss'].raw(fmt='{:.0f}')} MiB.", ""]
        summary.append(f"| 3 | CSV replay, {r['lines'] / 1e3:.0f} k lines | {secs:.2f} s "
                       f"({secs / r['peer_seconds'].median:.1f}x a split pass), {rss:.0f} MiB peak "
                       f"| <= 2 s; <= 300 MB | {check(secs, 2)} / {check(rss * 2**20, 300e6)} |")
    if res.html:
        h = res.html
        plain, with_html = h["plain"].median, h["html"].median
        cost = with_html - plain
        lines += [f"### Self-contained HTML report: {h['services']} services x {h['rounds']} rounds at 1 s "
                  f"({h['samples']:,} samples)", "",
                  f"`pytest --k2-replay=<recording> --html=report.html --self-contained-html` in a subprocess "
                  f"(recording {h['recording_bytes'] / 2**20:.0f} MiB), against the same run without `--html` "
                  "(the peer). The report's cost is the difference of the medians.", "",
                  "| figure | value | target | |", "|---|---|---|---|",
                  f"| report size | {h['size'] / 1e6:.2f} MB | <= 5 MB | {check(h['size'], 5e6)} |",
                  f"| run with --html | {with_html:.2f} s | | |",
                  f"| run without --html (peer) | {plain:.2f} s | | |",
                  f"| writing the report (difference) | {cost:.2f} s ({with_html / plain:.2f}x the peer) | <= 5 s "
                  f"| {check(cost, 5)} |", "",
                  f"Raw runs: with --html {h['html'].raw(fmt='{:.2f}')} s; without {h['plain'].raw(fmt='{:.2f}')} s. "
                  "Most of either run is reading the recording (JSON Lines).", ""]
        summary.append(f"| 3 | HTML report, 13 services x 24 h | {h['size'] / 1e6:.2f} MB, written in {cost:.2f} s "
                       f"({with_html / plain:.2f}x the run without it) | <= 5 MB; <= 5 s "
                       f"| {check(h['size'], 5e6)} / {check(cost, 5)} |")

    growth_lines = growth_section(res, plot)
    lines += growth_lines

    if res.fidelity:
        f = res.fidelity
        budget = f["budget"]
        series = f["series"]
        lines += ["## 5. Fidelity vs sampling rate", "",
                  f"A real container (busybox sh, `--cpus={3 * budget.cpu:g}`, a tmpfs) with a budget of "
                  f"{budget.cpu:g} cores and {live.FIDELITY_RAM_MIB}MB: a busy loop for 2 s (3x the CPU "
                  f"budget), then {2 * live.FIDELITY_RAM_MIB} MiB written to the tmpfs and removed 2 s later "
                  "(2x the RAM budget), sampled live by the plugin at the default 1 s "
                  f"({len(series)} rounds).", "",
                  f"- `cpu_spike`: **{f['spike'].status}**: {f['spike'].message}",
                  f"- `ram_max`: **{f['ram'].status}**: {f['ram'].message}", "",
                  "Series around the events (time from the first round, CPU cores, RAM MiB): "
                  + "; ".join(f"{t - series.times[0]:.0f}s {c:.2f} {r / 2**20:.1f}"
                              for t, c, r in zip(series.times, series.cpu, series.ram, strict=True)
                              if c > 0.05 or r > budget.ram / 2), "",
                  "Simulated from that 1 s series (placed in a 10-minute window, the rest at the container's idle "
                  "level; 1000 phases per interval): the share of sampling phases that never see the burst at "
                  f"or above the spike limit ({f['cpu_limit']:.2f} cores = {budget.spike_factor:g}x budget) or the "
                  f"spike above the RAM budget. The plugin's CPU figure is the average over its own interval; "
                  "`docker stats --no-stream` reports the average over the daemon's last 1 s.", "",
                  "| sampler | interval | CPU burst missed | RAM spike missed |", "|---|---|---|---|"]
        for label, interval, cpu_miss, ram_miss in f["table"]:
            lines.append(f"| {label} | {interval:g} s | {cpu_miss:.1%} | {ram_miss:.1%} |")
        caught = f["spike"].status == "failed" and f["ram"].status == "failed"
        default = f["table"][0]
        loop = f["table"][-1]
        lines += ["", "At 1 s a 2 s burst always covers one whole sampling interval, so it is caught at any phase; "
                  "from 2 s on the average over the interval dilutes it below the spike limit at some phases. The "
                  "step doc's loop reads twice in 10 minutes and each read sees about 1 s: it misses both events "
                  "at nearly every phase.", ""]
        summary.append(f"| 5 | 2 s CPU burst (3x) and RAM spike (2x), live at 1 s | "
                       f"{'both caught' if caught else 'NOT caught'}; simulated miss at 1 s: {default[2]:.0%} / "
                       f"{default[3]:.0%}; step doc loop misses {loop[2]:.1%} / {loop[3]:.1%} | caught "
                       f"| {verdict(caught and default[2] == 0 and default[3] == 0)} |")

    head = ["## Summary", "", "| # | target | measured | goal | |", "|---|---|---|---|---|", *summary, ""]
    machine_end = lines.index("## Machine") + len(res.machine) + 5
    out.write_text("\n".join(lines[:machine_end] + head + lines[machine_end:]) + NOTES)


def growth_section(res: Results, plot: Path | None) -> list[str]:
    lines: list[str] = []
    counts = sorted(n for n in res.latency if n in res.cpu)
    if len(counts) >= 2:
        lines += ["## 4. Cost growth", "", "### With containers (idle busybox containers)", "",
                  "Round latency as in section 2 (medians); CPU as in section 1 (own + daemon extra, % of one "
                  f"core, {res.config.runs} runs of {res.config.growth_seconds:g} s, except 15 containers: "
                  f"{res.config.overhead_seconds:g} s).", "",
                  "| containers | cgroup round | API round | docker stats --no-stream | cgroup CPU: own / total "
                  "| API CPU: own / total |", "|---|---|---|---|---|---|"]
        for n in counts:
            lat, seg = res.latency[n], res.cpu[n]
            lines.append(f"| {n} | {lat['cgroup'].median * 1e3:.2f} ms | {lat['api'].median * 1e3:.0f} ms | "
                         f"{lat['docker stats --no-stream'].median * 1e3:.0f} ms | "
                         f"{median(overhead(seg, 'cgroup').own):.3f}% / {median(overhead(seg, 'cgroup').total):.3f}% | "
                         f"{median(overhead(seg, 'api').own):.3f}% / {median(overhead(seg, 'api').total):.3f}% |")
        first, last = counts[0], counts[-1]
        grow = res.latency[last]["cgroup"].median / res.latency[first]["cgroup"].median
        lines += ["", f"From {first} to {last} containers ({last / first:.0f}x) the cgroup round grows "
                  f"{grow:.1f}x: linear or better (a fixed part per round, then a few small file reads per "
                  "container). The API round stays near the daemon's 1 s collection tick while the calls run "
                  "concurrently (32 at a time), and its CPU grows with the number of stats calls the daemon "
                  "serves per second.", "", "Raw CPU runs (% of one core, total):", ""]
        for n in counts:
            for mode in ("cgroup", "api"):
                lines.append(f"- {n} containers, {mode}: {fmt_list(overhead(res.cpu[n], mode).total)}")
        lines.append("")
    if res.judging:
        lines += ["### Judging with window length (13 services, 1 s)", "",
                  "| window | samples | Window.nbytes | judge_all | peak allocation while judging |",
                  "|---|---|---|---|---|"]
        for row in res.judging:
            lines.append(f"| {row['label']} | {row['samples']:,} | {row['nbytes'] / 2**20:.1f} MiB | "
                         f"{row['judge'].median:.3f} s | {row['peak'] / 2**20:.0f} MiB |")
        a, b = res.judging[0], res.judging[-1]
        scale = b["samples"] / a["samples"]
        lines += ["", f"From {a['label']} to {b['label']} ({scale:.0f}x the samples) judging takes "
                  f"{b['judge'].median / a['judge'].median:.0f}x the time and {b['peak'] / max(a['peak'], 1):.0f}x "
                  "the memory: linear. Judging is a few passes of numpy over each series (a partition for the "
                  "percentile, argmax, counts); a service's series is kept once built (times, CPU and RAM as "
                  "float64, 24 bytes a sample, reused by every criterion and report), which is most of the peak; "
                  "the TOTAL series is summed one container at a time into arrays of one value per round.", "",
                  "Raw runs (s): " + "; ".join(f"{r['label']}: {r['judge'].raw(fmt='{:.3f}')}" for r in res.judging),
                  ""]
    if plot is not None and lines:
        draw(res, plot)
        lines += [f"![cost growth]({plot.name})", ""]
    return lines


def draw(res: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    counts = sorted(n for n in res.latency if n in res.cpu)
    if counts:
        ax = axes[0]
        for mode, style in (("cgroup", "o-"), ("api", "s-"), ("docker stats --no-stream", "^--")):
            ax.plot(counts, [res.latency[n][mode].median * 1e3 for n in counts], style, label=mode)
        ax.set(xlabel="containers", ylabel="round latency (ms)", yscale="log", title="Round latency")
        ax.legend()
        ax = axes[1]
        for mode, style in (("cgroup", "o-"), ("api", "s-")):
            ax.plot(counts, [median(overhead(res.cpu[n], mode).total) for n in counts], style, label=mode)
        ax.axhline(1.0, color="grey", linestyle=":", label="target at 15 containers (1%)")
        ax.set(xlabel="containers", ylabel="% of one core (own + daemon extra)", title="Sampling CPU at 1 s")
        ax.legend()
    if res.judging:
        ax = axes[2]
        samples = [r["samples"] / 1e6 for r in res.judging]
        ax.plot(samples, [r["judge"].median for r in res.judging], "o-", label="judge_all time (s)")
        ax.set(xlabel="samples (millions), 13 services at 1 s", ylabel="seconds", title="Judging vs window")
        twin = ax.twinx()
        twin.plot(samples, [r["peak"] / 2**20 for r in res.judging], "s--", color="tab:red",
                  label="peak allocation (MiB)")
        twin.set_ylabel("MiB")
        for r, x in zip(res.judging, samples, strict=True):
            ax.annotate(r["label"], (x, r["judge"].median), textcoords="offset points", xytext=(4, -12))
        ax.legend(loc="upper left")
        twin.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, metadata={"Date": None})
    plt.close(fig)


NOTES = """
## Notes

- The Engine is shared: containers of other projects running on it during the benchmark show up in the
  daemon-side CPU of every mode, the idle runs included; the daemon extra subtracts the idle median.
- Daemon-side CPU is read from `/proc/<pid>/stat` in clock ticks (10 ms); the plugin's own from `getrusage`.
- API path: its CPU is mostly the daemon's (dockerd -> containerd -> shim for every container every second),
  the same work `docker stats` makes the daemon do, so no sampler built on the stats API can come under 0.5x
  `docker stats` or 1% of a core at 15 containers on this Engine: the targets of section 1 are met by the
  cgroup path, the default on the Docker host; the API path is the fallback for a remote `DOCKER_HOST`.
- The CPU of the cgroup path is close to the resolution of the daemon-side figure (10 ms ticks over 4-12 s
  runs, on a shared Engine): its daemon extra scatters around zero, sometimes below.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="every section at a smaller size (about 4 minutes)")
    parser.add_argument("--runs", type=int, default=5, help="measured runs per figure, after a warm-up (default 5)")
    parser.add_argument("--overhead-seconds", type=float, default=12.0,
                        help="length of one overhead run at 15 containers (default 12: 5 runs = 60 s)")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections (default all): {','.join(SECTIONS)}")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args = parser.parse_args()
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    cfg = config(args)
    # SIGTERM unwinds like Ctrl-C, so the benchmark's containers and image are removed either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    res = Results(machine(), cfg)
    if only & {"overhead", "latency", "growth", "fidelity"}:
        run_live(cfg, only, res)
    run_offline(cfg, only, res)
    res.wall = time.monotonic() - started
    write_results(res, args.output, args.output.parent / "growth.svg")
    log(f"wrote {args.output} in {res.wall / 60:.1f} min")


if __name__ == "__main__":
    main()
