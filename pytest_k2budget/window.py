"""The sample store: what a source saw over the window, laid out as numpy arrays.

A source adds containers, rounds of samples and lifecycle events; criteria and reports read per-service
and stack-total series. This is the one module that knows how samples sit in memory: per container,
fixed-size chunks of (round index int32, CPU cores float64, RAM bytes float32) = 16 bytes a sample, so a
24 h window at 1 s holds no Python object per sample and never copies a growing array. RAM fits float32
exactly: cgroups count memory in 4 KiB pages, and float32 holds every multiple of 4 KiB up to 64 GiB.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

TOTAL = "TOTAL"

EventKind = Literal["start", "die", "restart", "recreate", "oom_kill", "destroy", "gap"]
# Kinds that count against a service's `max_restarts`.
RESTART_KINDS: frozenset[str] = frozenset({"restart", "recreate"})

_CHUNK = 4096


@dataclass(frozen=True)
class Container:
    key: int
    id: str
    name: str
    service: str


@dataclass(frozen=True)
class Event:
    time: float
    kind: EventKind
    container: str
    service: str | None
    detail: str = ""


@dataclass(frozen=True)
class Gap:
    """No samples between the round at `start` (the last before it) and the round at `end` (the first after)."""

    start: float
    end: float
    reason: str

    @property
    def seconds(self) -> float:
        return self.end - self.start


@dataclass(frozen=True)
class Series:
    """One service's (or the stack's) samples: a value per round in which it had any sample.

    CPU is NaN in a round where no container had a CPU reading yet (a counter needs two reads).
    """

    times: FloatArray
    cpu: FloatArray
    ram: FloatArray

    def __len__(self) -> int:
        return int(self.times.size)


class _ChunkedColumns:
    """Append-only columns in fixed chunks: no reallocation, slack bounded by one chunk."""

    __slots__ = ("_chunks", "_cpu", "_fill", "_ram", "_rounds", "_size")

    def __init__(self) -> None:
        self._chunks: list[tuple[npt.NDArray[np.int32], FloatArray, npt.NDArray[np.float32]]] = []
        self._fill = _CHUNK
        self._size = 0

    def _room(self) -> None:
        """A new chunk once the last one is full."""
        if self._fill == _CHUNK:
            self._chunks.append(
                (np.empty(_CHUNK, np.int32), np.empty(_CHUNK, np.float64), np.empty(_CHUNK, np.float32))
            )
            self._fill = 0

    def append(self, round_index: int, cpu: float, ram: float) -> None:
        self._room()
        rounds, cpus, rams = self._chunks[-1]
        rounds[self._fill] = round_index
        cpus[self._fill] = cpu
        rams[self._fill] = ram
        self._fill += 1
        self._size += 1

    def extend(self, rounds: npt.ArrayLike, cpu: npt.ArrayLike, ram: npt.ArrayLike) -> None:
        """Bulk append, for sources that build whole columns at once (replay, Prometheus)."""
        r = np.asarray(rounds, np.int32)
        c = np.asarray(cpu, np.float64)
        m = np.asarray(ram, np.float32)
        start = 0
        while start < r.size:
            self._room()
            take = min(_CHUNK - self._fill, r.size - start)
            dst_r, dst_c, dst_m = self._chunks[-1]
            dst_r[self._fill : self._fill + take] = r[start : start + take]
            dst_c[self._fill : self._fill + take] = c[start : start + take]
            dst_m[self._fill : self._fill + take] = m[start : start + take]
            self._fill += take
            self._size += take
            start += take

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes + c.nbytes + m.nbytes for r, c, m in self._chunks)

    def arrays(self) -> tuple[npt.NDArray[np.int32], FloatArray, FloatArray]:
        if not self._chunks:
            return np.empty(0, np.int32), np.empty(0), np.empty(0)
        last = len(self._chunks) - 1
        parts = [
            (r[: self._fill], c[: self._fill], m[: self._fill]) if i == last else (r, c, m)
            for i, (r, c, m) in enumerate(self._chunks)
        ]
        return (
            np.concatenate([p[0] for p in parts]),
            np.concatenate([p[1] for p in parts]),
            np.concatenate([p[2] for p in parts]).astype(np.float64),
        )


class _ChunkedTimes:
    __slots__ = ("_chunks", "_fill", "_size")

    def __init__(self) -> None:
        self._chunks: list[FloatArray] = []
        self._fill = _CHUNK
        self._size = 0

    def append(self, t: float) -> int:
        if self._fill == _CHUNK:
            self._chunks.append(np.empty(_CHUNK, np.float64))
            self._fill = 0
        self._chunks[-1][self._fill] = t
        self._fill += 1
        self._size += 1
        return self._size - 1

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self._chunks)

    def array(self) -> FloatArray:
        if not self._chunks:
            return np.empty(0)
        return np.concatenate([*self._chunks[:-1], self._chunks[-1][: self._fill]])


@dataclass
class Window:
    """Everything a source observed; criteria and reports only read it.

    `interval` is the nominal time between rounds; `planned` the window asked for (seconds). A window
    is PARTIAL when it was interrupted or covered less than planned.
    """

    source: str
    interval: float
    planned: float | None = None
    restarts_unobservable: str | None = None
    interrupted: bool = False
    stop_reason: str | None = None
    started: float | None = None
    ended: float | None = None
    warnings: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    _containers: list[Container] = field(default_factory=list)
    _columns: list[_ChunkedColumns] = field(default_factory=list)
    _times: _ChunkedTimes = field(default_factory=_ChunkedTimes)
    _cache: dict[str, Series] = field(default_factory=dict)

    # --- write side (sources) ---------------------------------------------------------------

    def add_container(self, id: str, name: str, service: str) -> Container:
        container = Container(len(self._containers), id, name.lstrip("/"), service)
        self._containers.append(container)
        self._columns.append(_ChunkedColumns())
        return container

    def add_round(self, t: float, samples: Iterable[tuple[int, float, float]]) -> int:
        """One sampling round at time `t`: (container key, CPU cores or NaN, RAM bytes or NaN) each."""
        index = self._times.append(t)
        if self.started is None:
            self.started = t
        self.ended = t
        for key, cpu, ram in samples:
            self._columns[key].append(index, cpu, ram)
        self._cache.clear()
        return index

    def add_rounds(self, times: Sequence[float] | FloatArray) -> int:
        """Bulk rounds (replay, Prometheus); returns the index of the first. Fill them with `extend`."""
        first = len(self._times)
        for t in np.asarray(times, np.float64):
            self._times.append(float(t))
        if len(self._times):
            self.started = self.started if self.started is not None else float(np.asarray(times)[0])
            self.ended = float(np.asarray(times)[-1])
        self._cache.clear()
        return first

    def extend(self, key: int, rounds: npt.ArrayLike, cpu: npt.ArrayLike, ram: npt.ArrayLike) -> None:
        self._columns[key].extend(rounds, cpu, ram)
        self._cache.clear()

    def add_event(self, event: Event) -> None:
        self.events.append(event)

    def add_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        self.events.append(Event(gap.start, "gap", "", None, f"{gap.seconds:.0f}s without samples: {gap.reason}"))

    # --- read side (criteria, reports) ------------------------------------------------------

    @property
    def containers(self) -> Sequence[Container]:
        return tuple(self._containers)

    @property
    def rounds(self) -> int:
        return len(self._times)

    @property
    def samples(self) -> int:
        return sum(len(c) for c in self._columns)

    @property
    def nbytes(self) -> int:
        """Bytes held by the sample arrays (benchmarks read this)."""
        return self._times.nbytes + sum(c.nbytes for c in self._columns)

    @property
    def round_times(self) -> FloatArray:
        return self._times.array()

    @property
    def covered(self) -> float:
        """Seconds the samples cover: last round minus first, plus the interval the first one stands for,
        less the rounds every gap lost (a gap runs from the round before it to the round after it)."""
        if self.started is None or self.ended is None:
            return 0.0
        return max(self.ended - self.started + self.interval - self.lost, 0.0)

    @property
    def lost(self) -> float:
        """Seconds of rounds the gaps took: a gap one interval long lost none."""
        return sum(max(gap.seconds - self.interval, 0.0) for gap in self.gaps)

    @property
    def partial(self) -> bool:
        if self.interrupted:
            return True
        return self.planned is not None and self.covered + 0.5 * self.interval < self.planned

    def services(self) -> list[str]:
        """Every service a container was seen for, budgeted or not, in first-seen order."""
        return list(dict.fromkeys(c.service for c in self._containers))

    def containers_of(self, service: str) -> list[Container]:
        if service == TOTAL:
            return list(self._containers)
        return [c for c in self._containers if c.service == service]

    def events_of(self, service: str) -> list[Event]:
        return [e for e in self.events if e.service == service]

    def column(self, key: int) -> tuple[npt.NDArray[np.int32], FloatArray, FloatArray]:
        """One container's raw samples: round indices, CPU cores, RAM bytes."""
        return self._columns[key].arrays()

    def container_series(self, key: int) -> Series:
        rounds, cpu, ram = self._columns[key].arrays()
        return Series(self.round_times[rounds], cpu, ram)

    def series(self, service: str) -> Series:
        """Per-round sum over the service's containers (all containers for TOTAL).

        A scaled service is judged on what its replicas use together in the same round; a round in which
        none of them had a sample is absent, not zero.
        """
        cached = self._cache.get(service)
        if cached is not None:
            return cached
        keys = [c.key for c in self.containers_of(service)]
        times = self.round_times
        if len(keys) == 1:
            result = self.container_series(keys[0])
        else:
            result = _sum_per_round(times, (self._columns[k].arrays() for k in keys))
        self._cache[service] = result
        return result


def _sum_per_round(
    times: FloatArray, columns: Iterator[tuple[npt.NDArray[np.int32], FloatArray, FloatArray]]
) -> Series:
    # One container's columns at a time, added into per-round sums: memory stays at a few arrays of one
    # value per round plus one container's samples, not copies of every sample of the stack. Sums are
    # added in container order, as a single bincount over all samples would add them.
    n = times.size
    present = np.zeros(n, bool)
    cpu_sum, ram_sum = np.zeros(n), np.zeros(n)
    # A round in which a container was there without a figure (a new container's first CPU reading) has
    # an unknown sum: leaving the container out would under-report the service.
    cpu_unknown, ram_unknown = np.zeros(n, bool), np.zeros(n, bool)
    for rounds, cpu, ram in columns:
        if n == 0 or rounds.size == 0:
            continue
        present[rounds] = True
        for values, sums, unknown in ((cpu, cpu_sum, cpu_unknown), (ram, ram_sum, ram_unknown)):
            ok = ~np.isnan(values)
            sums += np.bincount(rounds[ok], weights=values[ok], minlength=n)
            unknown[rounds[~ok]] = True
    cpu_sum[cpu_unknown] = math.nan
    ram_sum[ram_unknown] = math.nan
    return Series(times[present], cpu_sum[present], ram_sum[present])
