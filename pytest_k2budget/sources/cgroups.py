"""Container CPU and RAM straight from cgroup files, for a plugin running on the Docker host.

Reading a few small files costs microseconds where an Engine API stats call costs milliseconds, and the
figures mean exactly what the API (and docker stats) report, because the daemon reads the same files:

- CPU: the cumulative counter in nanoseconds, `cpuacct.usage` (v1) or `cpu.stat` `usage_usec` x 1000 (v2),
  the very value the API returns as `cpu_stats.cpu_usage.total_usage`;
- RAM: the working set, usage minus inactive file cache: `memory.usage_in_bytes` - `total_inactive_file`
  (v1) or `memory.current` - `inactive_file` (v2), the subtraction docker stats applies to the API figures;
- OOM kills: the `oom_kill` counter of `memory.oom_control` (v1) or `memory.events` (v2).

`reading_from_stats` turns an API stats response into the same `Reading`, so both paths feed one sampler.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

CGROUP_ROOT = Path("/sys/fs/cgroup")

Version = Literal[1, 2]


@dataclass(frozen=True)
class Reading:
    """One read of a container: `time` in Unix seconds, when the counters were read."""

    time: float
    cpu_ns: int | None
    ram: int | None
    oom_kills: int | None = None


@dataclass(frozen=True)
class CgroupPaths:
    """Where one container's counters live. v1 keeps CPU and memory in separate hierarchies."""

    version: Version
    cpu: Path
    memory: Path


def working_set(usage: int, stats: Mapping[str, Any]) -> int:
    """docker stats' memory figure: usage less the inactive file cache (v1 key first, as the docker CLI does)."""
    for key in ("total_inactive_file", "inactive_file"):
        inactive = stats.get(key)
        if isinstance(inactive, int) and inactive < usage:
            return usage - inactive
    return usage


def reading_from_stats(stats: Mapping[str, Any]) -> Reading:
    """A `Reading` from an Engine API stats response (`stream=false`, `one-shot=true`).

    A stopped or vanishing container answers with empty sections: those figures are None.
    """
    cpu = stats.get("cpu_stats", {}).get("cpu_usage", {}).get("total_usage")
    memory = stats.get("memory_stats", {})
    usage = memory.get("usage")
    ram = working_set(usage, memory.get("stats", {})) if isinstance(usage, int) and usage > 0 else None
    return Reading(parse_api_time(str(stats.get("read", ""))), cpu if cpu else None, ram)


def parse_api_time(text: str) -> float:
    """Unix seconds from the Engine's RFC 3339 nanosecond timestamps (`2026-12-04T19:59:53.976902983Z`).

    The zero time (`0001-01-01T00:00:00Z`) and anything unparsable give NaN.
    """
    stamp = text.rstrip("Z")
    whole, _, fraction = stamp.partition(".")
    try:
        parsed = datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return float("nan")
    if parsed.year < 1970:
        return float("nan")
    seconds = (parsed - datetime(1970, 1, 1)).total_seconds()
    return seconds + (float("0." + fraction) if fraction.isdigit() else 0.0)


class CgroupReader:
    """Finds and reads containers' cgroup files under `root`; `available` is False when none can be read."""

    def __init__(self, root: Path = CGROUP_ROOT, proc: Path = Path("/proc")) -> None:
        self.root = root
        self.proc = proc
        self.version: Version | None = self._detect()

    def _detect(self) -> Version | None:
        if (self.root / "cgroup.controllers").is_file():
            return 2
        if (self.root / "memory").is_dir() and any((self.root / d).is_dir() for d in ("cpuacct", "cpu,cpuacct")):
            return 1
        return None

    @property
    def available(self) -> bool:
        return self.version is not None and os.access(self.root, os.R_OK)

    def locate(self, container_id: str, pid: int | None = None, cgroup_parent: str = "") -> CgroupPaths | None:
        """The container's cgroup directories, or None when they cannot be read from here.

        The process's own /proc/<pid>/cgroup is exact for every driver and parent; the usual layouts of the
        cgroupfs and systemd drivers are tried when the pid is not visible (another pid namespace).
        """
        if self.version is None:
            return None
        relative = self._from_proc(pid) if pid else None
        candidates: list[str | dict[str, str]] = [relative] if relative else []
        parent = cgroup_parent.strip("/")
        candidates += [
            f"{parent or 'docker'}/{container_id}",
            f"{parent or 'system.slice'}/docker-{container_id}.scope",
        ]
        for rel in candidates:
            paths = self._paths(rel)
            # Every driver names the container's cgroup after its id; a path without it is another process's
            # (a pid from another pid namespace that happens to exist here too).
            if paths is not None and container_id in str(paths.cpu) and container_id in str(paths.memory) \
                    and self._readable(paths):
                return paths
        return None

    def _from_proc(self, pid: int) -> dict[str, str] | None:
        try:
            text = (self.proc / str(pid) / "cgroup").read_text()
        except OSError:
            return None
        found: dict[str, str] = {}
        for line in text.splitlines():
            _, controllers, path = line.split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                found[controller] = path.strip("/")
        return found

    def _paths(self, rel: str | dict[str, str]) -> CgroupPaths | None:
        if self.version == 2:
            path = rel.get("") if isinstance(rel, dict) else rel
            return None if path is None else CgroupPaths(2, self.root / path, self.root / path)
        cpu_dir = next((d for d in ("cpuacct", "cpu,cpuacct") if (self.root / d).is_dir()), "cpuacct")
        if isinstance(rel, dict):
            cpu_rel, mem_rel = rel.get("cpuacct"), rel.get("memory")
            if cpu_rel is None or mem_rel is None:
                return None
            return CgroupPaths(1, self.root / cpu_dir / cpu_rel, self.root / "memory" / mem_rel)
        return CgroupPaths(1, self.root / cpu_dir / rel, self.root / "memory" / rel)

    @staticmethod
    def _readable(paths: CgroupPaths) -> bool:
        cpu_file = "cpuacct.usage" if paths.version == 1 else "cpu.stat"
        mem_file = "memory.usage_in_bytes" if paths.version == 1 else "memory.current"
        return os.access(paths.cpu / cpu_file, os.R_OK) and os.access(paths.memory / mem_file, os.R_OK)

    def read(self, paths: CgroupPaths, now: float) -> Reading | None:
        """One reading, or None once the cgroup is gone (the container stopped or was removed)."""
        try:
            if paths.version == 1:
                cpu_ns = int(_read(paths.cpu / "cpuacct.usage"))
                usage = int(_read(paths.memory / "memory.usage_in_bytes"))
                stat = _keys(_read(paths.memory / "memory.stat"), _INACTIVE)
                oom = _keys(_read(paths.memory / "memory.oom_control"), _OOM_KILL).get("oom_kill")
            else:
                cpu_ns = _keys(_read(paths.cpu / "cpu.stat"), _USAGE_USEC)["usage_usec"] * 1000
                usage = int(_read(paths.memory / "memory.current"))
                stat = _keys(_read(paths.memory / "memory.stat"), _INACTIVE)
                oom = _keys(_read(paths.memory / "memory.events"), _OOM_KILL).get("oom_kill")
        except (OSError, ValueError, KeyError):
            return None
        return Reading(now, cpu_ns, working_set(usage, stat), oom)


_INACTIVE = ("total_inactive_file", "inactive_file")
_OOM_KILL = ("oom_kill",)
_USAGE_USEC = ("usage_usec",)


def _read(path: Path) -> bytes:
    """A whole cgroup file through bare system calls: a round reads four files per container, and a
    Path.read_text costs several times the read itself."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = [os.read(fd, 65536)]
        while chunks[-1]:
            chunks.append(os.read(fd, 65536))
    finally:
        os.close(fd)
    return b"".join(chunks)


def _keys(text: bytes, keys: tuple[str, ...]) -> dict[str, int]:
    """The integer values of `keys` in a cgroup `key value` file (memory.stat, cpu.stat, memory.events,
    memory.oom_control), found without splitting the file's other lines."""
    result: dict[str, int] = {}
    padded = b"\n" + text
    for key in keys:
        start = padded.find(b"\n" + key.encode() + b" ")
        if start < 0:
            continue
        end = padded.find(b"\n", start + 1)
        value = padded[start + len(key) + 2 : end if end >= 0 else None].strip()
        if value.lstrip(b"-").isdigit():
            result[key] = int(value)
    return result
