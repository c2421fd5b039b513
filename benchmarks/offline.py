"""Offline sections: the sample store and the judges at scale, the step doc's CSV replay, the HTML report.

Windows are filled directly (`Window.add_rounds` + `Window.extend`, as the replay and Prometheus sources fill
them); files are generated into a temporary directory. Time and memory of a replay are measured in a
subprocess of its own (`python -m benchmarks.offline replay|peer FILE BUDGETS`), so peak RSS is the replay's.
"""

from __future__ import annotations

import gc
import json
import resource
import shutil
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

from examples.make_burn_in_csv import docker_size
from pytest_k2budget import criteria
from pytest_k2budget.budgets import Budgets, load_budgets, parse_budgets
from pytest_k2budget.recording import dump_recording
from pytest_k2budget.sources.replay import load_replay
from pytest_k2budget.window import Window

from .common import ROOT, Timed

START = 1_764_806_400.0  # 2025-12-04T00:00:00Z: any fixed start will do
HOST_RAM = 23.54 * 2**30
PAGE = 4096.0


def services(n: int) -> list[str]:
    return [f"svc{i:03d}" for i in range(n)]


def budgets_for(names: list[str], cpu: float = 0.5, ram: str = "512MB") -> Budgets:
    body = "".join(f"  {name}: {{cpu: {cpu}, ram: {ram}}}\n" for name in names)
    return parse_budgets(f"version: 1\nstack:\n  name: benchmark\n  compose_project: k2\nservices:\n{body}")


def filled_window(names: list[str], rounds: int, interval: float = 1.0, seed: int = 1) -> Window:
    """`rounds` rounds at `interval` of one container per service, idle-ish CPU and a RAM of whole pages."""
    rng = np.random.default_rng(seed)
    window = Window(source="benchmark", interval=interval, planned=rounds * interval)
    window.add_rounds(START + np.arange(rounds, dtype=np.float64) * interval)
    index = np.arange(rounds, dtype=np.int32)
    for name in names:
        container = window.add_container(f"id-{name}", f"k2-{name}-1", name)
        cpu = rng.gamma(2.0, 0.05, rounds)
        ram = np.floor(rng.uniform(100, 300, rounds) * 2**20 / PAGE) * PAGE
        window.extend(container.key, index, cpu, ram)
    return window


def _judge_once(window: Window, budgets: Budgets) -> float:
    window._cache.clear()  # every run judges from the raw columns, as the first judge of a session does
    gc.collect()
    t0 = time.perf_counter()
    criteria.judge_all(window, budgets)
    return time.perf_counter() - t0


def judge_timing(window: Window, budgets: Budgets, runs: int) -> Timed:
    _judge_once(window, budgets)
    return Timed([_judge_once(window, budgets) for _ in range(runs)])


def judge_peak(window: Window, budgets: Budgets) -> int:
    """Bytes allocated at the peak of one judge_all, above what was held before (numpy reports to tracemalloc)."""
    window._cache.clear()
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        criteria.judge_all(window, budgets)
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
        window._cache.clear()


def window_scale(containers: int, rounds: int, runs: int) -> dict[str, object]:
    names = services(containers)
    t0 = time.perf_counter()
    window = filled_window(names, rounds)
    fill = time.perf_counter() - t0
    budgets = budgets_for(names)
    samples = window.samples
    judge = judge_timing(window, budgets, runs)
    peak = judge_peak(window, budgets)
    values = np.random.default_rng(2).gamma(2.0, 0.05, samples)
    np.percentile(values, 99)
    peer = Timed([_timed(lambda: np.percentile(values, 99)) for _ in range(runs)])
    return {"containers": containers, "rounds": rounds, "samples": samples, "nbytes": window.nbytes,
            "fixed": window.nbytes - 16 * samples, "fill": fill, "judge": judge, "judge_peak": peak,
            "peer": peer, "criteria": len(budgets.services) * len(criteria.SERVICE_CRITERIA)
            + len(criteria.TOTAL_CRITERIA)}


def _timed(fn: object) -> float:
    assert callable(fn)
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def judging_growth(lengths: list[tuple[str, int]], n_services: int, runs: int) -> list[dict[str, object]]:
    rows = []
    names = services(n_services)
    budgets = budgets_for(names)
    for label, rounds in lengths:
        window = filled_window(names, rounds)
        rows.append({"label": label, "rounds": rounds, "samples": window.samples, "nbytes": window.nbytes,
                     "judge": judge_timing(window, budgets, runs), "peak": judge_peak(window, budgets)})
        del window
        gc.collect()
    return rows


# --- the step doc's CSV ----------------------------------------------------------------------------


def write_stats_csv(path: Path, containers: int, rounds: int) -> int:
    """The step doc's loop output for `containers` over `rounds`; returns the number of lines."""
    rng = np.random.default_rng(3)
    cpu = rng.gamma(2.0, 5.0, (rounds, containers))
    ram = rng.uniform(50, 900, (rounds, containers)) * 2**20
    host = docker_size(HOST_RAM)
    names = [f"k2-{name}-1" for name in services(containers)]
    with path.open("w", encoding="utf-8") as out:
        for r in range(rounds):
            out.write("".join(
                f"{names[c]},{cpu[r, c]:.2f}%,{docker_size(ram[r, c])} / {host},{ram[r, c] / HOST_RAM * 100:.2f}%\n"
                for c in range(containers)))
    return rounds * containers


def replay_in_subprocess(kind: str, csv: Path, budgets: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-m", "benchmarks.offline", kind, str(csv), str(budgets)], cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def replay_csv(tmp: Path, containers: int, rounds: int, runs: int) -> dict[str, object]:
    csv = tmp / "burn-in.csv"
    budgets = tmp / "budgets.yml"
    lines = write_stats_csv(csv, containers, rounds)
    body = "".join(f"  {name}: {{cpu: 0.5, ram: 1GB}}\n" for name in services(containers))
    budgets.write_text(f"version: 1\nstack:\n  name: benchmark\n  compose_project: k2\nservices:\n{body}")
    results: dict[str, list[dict[str, float]]] = {"replay": [], "peer": []}
    for index in range(runs + 1):
        for kind in ("replay", "peer"):
            run = replay_in_subprocess(kind, csv, budgets)
            if index:
                results[kind].append(run)
    return {"lines": lines, "bytes": csv.stat().st_size, "containers": containers, "rounds": rounds,
            "seconds": Timed([r["seconds"] for r in results["replay"]]),
            "rss": Timed([r["maxrss"] for r in results["replay"]]),
            "rss_before": Timed([r["rss_before"] for r in results["replay"]]),
            "peer_seconds": Timed([r["seconds"] for r in results["peer"]]),
            "peer_rss": Timed([r["maxrss"] for r in results["peer"]]),
            "samples": int(results["replay"][0]["samples"])}


def _maxrss_mib() -> float:
    # VmHWM, not ru_maxrss: a child's ru_maxrss starts from its parent's peak at fork, which exec does not reset.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _replay_main(kind: str, csv: Path, budgets_path: Path) -> None:
    budgets = load_budgets(budgets_path)
    rss_before = _maxrss_mib()
    samples = 0
    t0 = time.perf_counter()
    if kind == "replay":
        window = load_replay(csv, budgets, 5.0)
        samples = window.samples
    else:
        with csv.open(encoding="utf-8") as handle:
            for line in handle:
                line.split(",")
    seconds = time.perf_counter() - t0
    print(json.dumps({"seconds": seconds, "maxrss": _maxrss_mib(), "rss_before": rss_before, "samples": samples}))


# --- the HTML report ---------------------------------------------------------------------------------

EXAMPLE_BUDGETS = ROOT / "examples" / "budgets.yml"


def html_report(tmp: Path, rounds: int, runs: int) -> dict[str, object]:
    """pytest --k2-replay of a 13-service recording, with and without a self-contained pytest-html report."""
    budgets = load_budgets(EXAMPLE_BUDGETS)
    workdir = tmp / "html"
    workdir.mkdir()
    shutil.copy(EXAMPLE_BUDGETS, workdir / "budgets.yml")
    (workdir / "pytest.ini").write_text("[pytest]\n")
    rng = np.random.default_rng(4)
    window = Window(source="docker", interval=1.0, planned=float(rounds))
    window.add_rounds(START + np.arange(rounds, dtype=np.float64))
    index = np.arange(rounds, dtype=np.int32)
    for budget in budgets.services:
        container = window.add_container(f"id-{budget.name}", f"k2-{budget.name}-1", budget.name)
        cpu = np.clip(rng.gamma(4.0, budget.cpu / 16, rounds), 0, None)
        ram = np.floor(rng.uniform(0.3, 0.6, rounds) * budget.ram / PAGE) * PAGE
        window.extend(container.key, index, cpu, ram)
    recording = workdir / "burn-in.jsonl"
    dump_recording(window, recording)
    base = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--k2-replay={recording}"]
    report = workdir / "report.html"
    with_html = [*base, f"--html={report}", "--self-contained-html"]
    timings: dict[str, list[float]] = {"plain": [], "html": []}
    for run_index in range(runs + 1):
        for kind, cmd in (("plain", base), ("html", with_html)):
            t0 = time.perf_counter()
            done = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, check=False)
            elapsed = time.perf_counter() - t0
            if done.returncode not in (0, 1):
                raise RuntimeError(f"pytest failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")
            if run_index:
                timings[kind].append(elapsed)
    return {"services": len(budgets.services), "rounds": rounds, "samples": window.samples,
            "recording_bytes": recording.stat().st_size, "size": report.stat().st_size,
            "plain": Timed(timings["plain"]), "html": Timed(timings["html"])}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] in ("replay", "peer"):
        _replay_main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        raise SystemExit("usage: python -m benchmarks.offline replay|peer CSV BUDGETS")
