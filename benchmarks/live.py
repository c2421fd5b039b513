"""Live sections: a stack of idle busybox containers on the real Engine, sampled by the plugin and by docker stats.

Every container and the image carry the label `k2budget.bench=<run id>` and are removed at the end; nothing
else on the Engine is touched. The image is a root filesystem holding Debian's static busybox, `docker
import`ed (no registry is needed), as the test suite builds its own.

`python -m benchmarks.live worker ...` is the sampling process whose CPU is measured: it runs the plugin's
live burn-in (`run_burn_in`, recording included) and prints its own rusage at each segment boundary.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from pytest_k2budget import options
from pytest_k2budget.budgets import Budgets, parse_budgets
from pytest_k2budget.progress import Progress
from pytest_k2budget.recording import Recorder
from pytest_k2budget.sources.docker import DockerSampler, Sampler, connect, run_burn_in
from pytest_k2budget.sources.replay import CSV_FORMAT
from pytest_k2budget.window import Window
from tests.images import find_busybox, import_busybox_image

from .common import ROOT, cpu_between, daemon_cpu, process_cpu

LABEL = "k2budget.bench"


def _busybox() -> Path:
    found = find_busybox()
    if found is None:
        raise SystemExit("no static busybox to build the benchmark image from (apt-get install busybox-static)")
    return found


def budgets_text(project: str, services: dict[str, tuple[float, str]], spike_factor: float = 2.0) -> str:
    body = "".join(f"  {name}: {{cpu: {cpu}, ram: {ram}}}\n" for name, (cpu, ram) in services.items())
    return (f"version: 1\nstack:\n  name: benchmark\n  compose_project: {project}\n"
            f"defaults:\n  spike_factor: {spike_factor}\nservices:\n{body}")


def settings(record: Path, burn_in: float, interval: float = 1.0) -> options.Settings:
    return options.Settings(mode="live", budgets_path=Path("budgets.yml"), burn_in=burn_in, interval=interval,
                            record_path=record)


class BenchStack:
    """This run's image and containers; `close` removes exactly those."""

    def __init__(self) -> None:
        self.client = docker.from_env(timeout=60)
        self.run_id = uuid.uuid4().hex[:8]
        self.project = f"k2bench{self.run_id}"
        self.image = f"k2budget-bench-busybox:{self.run_id}"
        self.containers: list[Any] = []
        self.started = 0
        self._build_image()

    def _build_image(self) -> None:
        import_busybox_image(self.client, _busybox(), self.image, (LABEL, self.run_id), '["sleep", "86400"]')

    def run(self, project: str, service: str, command: str, **kwargs: Any) -> Any:
        container = self.client.containers.run(
            self.image, ["sh", "-c", command], detach=True, name=f"{project}-{service}-1",
            labels={LABEL: self.run_id, "com.docker.compose.project": project,
                    "com.docker.compose.service": service}, **kwargs)
        self.containers.append(container)
        return container

    def idle(self, n: int) -> list[str]:
        """Make `n` idle containers of `self.project` run (adding to those already running); their names."""
        while self.started < n:
            self.run(self.project, f"svc{self.started:03d}", "exec sleep 86400")
            self.started += 1
        return [f"{self.project}-svc{i:03d}-1" for i in range(n)]

    def close(self) -> None:
        for container in self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.run_id}"}):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        with contextlib.suppress(docker.errors.APIError):
            self.client.images.remove(self.image, force=True)
        self.client.close()


# --- CPU overhead ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One measured run: seconds of wall time, CPU seconds of the measured process, CPU of the daemon side."""

    wall: float
    own: float
    daemon: float


def _worker_command(project: str, sampler: str, warmup: float, segments: int, seconds: float) -> list[str]:
    return [sys.executable, "-m", "benchmarks.live", "worker", project, sampler, str(warmup), str(segments),
            str(seconds)]


def measure_cpu(mode: str, project: str, names: list[str], warmup: float, segments: int,
                seconds: float) -> list[Segment]:
    """`segments` consecutive runs of `seconds` after `warmup`; mode: idle, cgroup, api or docker-stats."""
    marks: list[tuple[float, float, dict[int, float]]] = []  # (monotonic, own CPU, daemon CPU)
    if mode in ("cgroup", "api"):
        proc = subprocess.Popen(_worker_command(project, mode, warmup, segments, seconds), cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("MARK "):
                marks.append((time.monotonic(), float(line.split()[1]), daemon_cpu()))
        if proc.wait() != 0:
            raise RuntimeError(f"sampling worker ({mode}) failed with exit code {proc.returncode}")
    else:
        peer: subprocess.Popen[bytes] | None = None
        if mode == "docker-stats":
            # Streaming, as a user watching `docker stats` would run it; output is discarded, not parsed.
            peer = subprocess.Popen(["docker", "stats", "--format", CSV_FORMAT, *names],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        start = time.monotonic() + warmup
        try:
            for index in range(segments + 1):
                time.sleep(max(start + index * seconds - time.monotonic(), 0.0))
                own = process_cpu(peer.pid) if peer is not None else 0.0
                marks.append((time.monotonic(), own, daemon_cpu()))
        finally:
            if peer is not None:
                # docker stats does not always end on SIGTERM without a terminal; its CPU is already read.
                peer.kill()
                peer.wait()
    return [Segment(b[0] - a[0], b[1] - a[1], cpu_between(a[2], b[2])) for a, b in itertools.pairwise(marks)]


def worker(project: str, sampler: str, warmup: float, segments: int, seconds: float) -> None:
    budgets = parse_budgets(budgets_text(project, {"svc000": (1.0, "1GB")}))
    total = warmup + segments * seconds

    def marks() -> None:
        deadline = time.monotonic() + warmup
        for index in range(segments + 1):
            time.sleep(max(deadline + index * seconds - time.monotonic(), 0.0))
            usage = resource.getrusage(resource.RUSAGE_SELF)
            print(f"MARK {usage.ru_utime + usage.ru_stime:.6f}", flush=True)
        # Measured: end the burn-in as Ctrl-C would (an API round over many containers outlasts its interval,
        # so the planned rounds would run on well past the last mark).
        os.kill(os.getpid(), signal.SIGINT)

    with tempfile.TemporaryDirectory(prefix="k2bench-") as tmp:
        thread = threading.Thread(target=marks, daemon=True)
        thread.start()
        kind: Sampler = "api" if sampler == "api" else "cgroup"
        run_burn_in(budgets, settings(Path(tmp) / "rec.jsonl", total + 1.5), Progress.silent(), sampler=kind)
        thread.join()


# --- round latency --------------------------------------------------------------------------------


def round_latency(project: str, n: int, sampler: Sampler, rounds: int, spacing: float, warm: int = 2) -> list[float]:
    """Wall time of one sampling round (read every container, turn readings into samples, record the round)."""
    client, api_version = connect()
    budgets = parse_budgets(budgets_text(project, {"svc000": (1.0, "1GB")}))
    with tempfile.TemporaryDirectory(prefix="k2bench-") as tmp:
        recorder = Recorder(Window(source="docker", interval=spacing), Path(tmp) / "rec.jsonl")
        source = DockerSampler(client, api_version, budgets, recorder, project, sampler)
        try:
            source.relist(time.time())
            if len(source.tracked) != n:
                raise RuntimeError(f"expected {n} containers in {project}, the sampler sees {len(source.tracked)}")
            source.prime()
            times = []
            next_round = time.monotonic() + spacing
            for index in range(warm + rounds):
                time.sleep(max(next_round - time.monotonic(), 0.0))
                next_round += spacing
                t0 = time.perf_counter()
                readings = source.read_all()
                recorder.add_round(time.time(), source.samples(readings, time.time()))
                if index >= warm:
                    times.append(time.perf_counter() - t0)
        finally:
            source.close()
            recorder.close()
            client.close()
    return times


def docker_stats_no_stream(names: list[str], runs: int) -> list[float]:
    """Wall time of the step doc's call, one warm-up call first."""
    times = []
    for index in range(runs + 1):
        t0 = time.perf_counter()
        subprocess.run(["docker", "stats", "--no-stream", "--format", CSV_FORMAT, *names], check=True,
                       stdout=subprocess.DEVNULL)
        if index:
            times.append(time.perf_counter() - t0)
    return times


# --- fidelity -------------------------------------------------------------------------------------

FIDELITY_CPU = 0.25         # cores: the burst goes to 3x, 0.75 cores (one busy loop capped by --cpus)
FIDELITY_RAM_MIB = 64       # the spike writes 2x, 128 MiB, to a tmpfs (a tmpfs cannot be reclaimed: it counts)
BURST_AT, SPIKE_AT = 8, 16  # seconds after the container starts


def fidelity_script() -> str:
    return (f"sleep {BURST_AT}; (while :; do :; done) & a=$!; sleep 2; kill $a; "
            f"sleep {SPIKE_AT - BURST_AT - 2}; dd if=/dev/zero of=/data/spike bs=1M count={2 * FIDELITY_RAM_MIB} "
            "2>/dev/null; sleep 2; rm /data/spike; exec sleep 86400")


def fidelity_run(stack: BenchStack, seconds: float) -> tuple[Window, Budgets]:
    """A container that bursts to 3x its CPU budget for 2 s and to 2x its RAM budget for 2 s, sampled live at 1 s."""
    project = f"k2fid{stack.run_id}"
    budgets = parse_budgets(budgets_text(project, {"burst": (FIDELITY_CPU, f"{FIDELITY_RAM_MIB}MB")}))
    stack.run(project, "burst", fidelity_script(), nano_cpus=int(3 * FIDELITY_CPU * 1e9),
              tmpfs={"/data": f"size={4 * FIDELITY_RAM_MIB}m"})
    with tempfile.TemporaryDirectory(prefix="k2bench-") as tmp:
        window = run_burn_in(budgets, settings(Path(tmp) / "rec.jsonl", seconds), Progress.silent())
    return window, budgets


@contextlib.contextmanager
def bench_stack() -> Iterator[BenchStack]:
    stack = BenchStack()
    try:
        yield stack
    finally:
        stack.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        project, sampler, warmup, segments, seconds = sys.argv[2:7]
        worker(project, sampler, float(warmup), int(segments), float(seconds))
    else:
        raise SystemExit("usage: python -m benchmarks.live worker PROJECT SAMPLER WARMUP SEGMENTS SECONDS")
