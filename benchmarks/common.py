"""What every benchmark section shares: CPU clocks of processes, medians, the machine's description."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
# Processes that do work on behalf of a stats call: the daemon, containerd, and each container's shim
# (on Engine 20.10 a stats call goes dockerd -> containerd -> the shim, which reads the cgroup).
DAEMON_NAMES = ("dockerd", "containerd")
SHIM_PREFIX = "containerd-shim"


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a process and all its threads (dead ones included), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def daemon_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm in DAEMON_NAMES or comm.startswith(SHIM_PREFIX):
            pids.append(int(entry.name))
    return pids


def daemon_cpu() -> dict[int, float]:
    """CPU seconds so far of dockerd, containerd and every shim, by pid (a pid that vanished is left out)."""
    result = {}
    for pid in daemon_pids():
        try:
            result[pid] = process_cpu(pid)
        except OSError:
            continue
    return result


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the daemon side used between two `daemon_cpu` readings (processes present in both)."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def median(values: list[float]) -> float:
    return float(statistics.median(values))


@dataclass(frozen=True)
class Timed:
    """Runs of one measurement: the figure is the median; every run is kept for RESULTS.md."""

    runs: list[float]

    @property
    def median(self) -> float:
        return median(self.runs)

    def raw(self, scale: float = 1.0, fmt: str = "{:.3g}") -> str:
        return ", ".join(fmt.format(v * scale) for v in self.runs)


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


def machine() -> dict[str, str]:
    import docker
    import numpy

    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal:"))
    cgroup = "v2" if Path("/sys/fs/cgroup/cgroup.controllers").is_file() else "v1"
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "cpus": f"{os.cpu_count()} ({model})",
        "ram": f"{mem_kib / 2**20:.1f} GiB",
        "kernel": platform.release(),
        "docker engine": _run(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]),
        "docker CLI": _run(["docker", "version", "--format", "{{.Client.Version}}"]),
        "storage / cgroup driver": _run(["docker", "info", "--format", "{{.Driver}} / {{.CgroupDriver}}"]),
        "cgroup": cgroup,
        "python": sys.version.split()[0],
        "numpy": numpy.__version__,
        "docker SDK": docker.__version__,
        "pytest-k2budget": _run([sys.executable, "-c", "import importlib.metadata as m; "
                                 "print(m.version('pytest-k2budget'))"]),
        "git commit": _run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]),
    }
