"""The plugin's own recording format: JSON Lines, append-only, flushed every round.

Version 1, one JSON object a line:

- header, first line: ``{"k2budget_recording": 1, "source": "docker", "interval": 1.0, "planned": 86400,
  "restarts_unobservable": null}``
- a container, before its first sample: ``{"c": 0, "id": "3f2a...", "name": "k2-redpanda-1",
  "service": "redpanda"}``
- a round: ``{"t": 1764806400.0, "s": [[0, 0.42, 268435456], [1, null, 1048576]]}``: time (Unix seconds)
  and (container, CPU cores, RAM bytes) per sample; null where a figure is unknown
- an event: ``{"e": {"t": ..., "kind": "oom_kill", "container": "k2-redpanda-1", "service": "redpanda",
  "detail": "..."}}``; kinds: start, die, restart, recreate, oom_kill, destroy
- a gap in sampling: ``{"gap": {"start": ..., "end": ..., "reason": "..."}}``
- a warning the source raised: ``{"warn": "..."}``
- the end, when the run closed cleanly: ``{"end": {"t": ..., "interrupted": false, "stop_reason": null}}``

A run killed mid-write leaves a truncated last line: the reader drops it with a warning. A recording
without an end line was cut short; it replays as what it holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, get_args

from .errors import K2InputError
from .window import Container, Event, EventKind, Gap, Window

FORMAT_VERSION = 1
MAGIC = "k2budget_recording"


def _figure(value: float) -> float | None:
    return None if math.isnan(value) else value


class Recorder:
    """The write side of a window that also appends every change to a recording file."""

    def __init__(self, window: Window, path: str | Path) -> None:
        self.window = window
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file: IO[str] = self.path.open("w", encoding="utf-8")
        except OSError as exc:
            raise K2InputError(f"--k2-record: cannot write the recording: {exc.strerror}", path=str(path)) from None
        self._write({
            MAGIC: FORMAT_VERSION,
            "source": window.source,
            "interval": window.interval,
            "planned": window.planned,
            "restarts_unobservable": window.restarts_unobservable,
        })

    def _write(self, obj: dict[str, Any]) -> None:
        self._file.write(json.dumps(obj, separators=(",", ":")) + "\n")

    def add_container(self, id: str, name: str, service: str) -> Container:
        container = self.window.add_container(id, name, service)
        self._write({"c": container.key, "id": container.id, "name": container.name, "service": service})
        return container

    def add_round(self, t: float, samples: Iterable[tuple[int, float, float]]) -> int:
        rows = list(samples)
        index = self.window.add_round(t, rows)
        self._write({"t": t, "s": [[k, _figure(c), _figure(r)] for k, c, r in rows]})
        # One flush a round: a run killed at hour 23 loses at most the round being written.
        self._file.flush()
        return index

    def add_event(self, event: Event) -> None:
        self.window.add_event(event)
        self._write({"e": {"t": event.time, "kind": event.kind, "container": event.container,
                           "service": event.service, "detail": event.detail}})
        self._file.flush()

    def add_gap(self, gap: Gap) -> None:
        self.window.add_gap(gap)
        self._write({"gap": {"start": gap.start, "end": gap.end, "reason": gap.reason}})
        self._file.flush()

    def warn(self, message: str) -> None:
        self.window.warnings.append(message)
        self._write({"warn": message})

    def close(self) -> None:
        if self._file.closed:
            return
        self._write({"end": {"t": self.window.ended, "interrupted": self.window.interrupted,
                             "stop_reason": self.window.stop_reason}})
        self._file.close()


def dump_recording(window: Window, path: Path) -> None:
    """Write a whole window as a recording (for a window that was not recorded as it was sampled)."""
    import numpy as np

    copy = Window(source=window.source, interval=window.interval, planned=window.planned,
                  restarts_unobservable=window.restarts_unobservable)
    recorder = Recorder(copy, path)
    keys, rounds, cpus, rams = [], [], [], []
    for container in window.containers:
        recorder.add_container(container.id, container.name, container.service)
        r, c, m = window.column(container.key)
        keys.append(np.full(r.size, container.key))
        rounds.append(r)
        cpus.append(c)
        rams.append(m)
    if keys:
        all_rounds = np.concatenate(rounds)
        order = np.argsort(all_rounds, kind="stable")
        all_keys, all_cpu, all_ram = (np.concatenate(x)[order] for x in (keys, cpus, rams))
        bounds = np.searchsorted(all_rounds[order], np.arange(window.rounds + 1))
        for index, t in enumerate(window.round_times):
            lo, hi = bounds[index], bounds[index + 1]
            recorder.add_round(float(t), zip(all_keys[lo:hi].tolist(), all_cpu[lo:hi].tolist(),
                                              all_ram[lo:hi].tolist(), strict=True))
    for gap in window.gaps:
        recorder.add_gap(gap)
    for event in window.events:
        if event.kind != "gap":
            recorder.add_event(event)
    for message in window.warnings:
        recorder.warn(message)
    copy.interrupted, copy.stop_reason = window.interrupted, window.stop_reason
    recorder.close()


def is_recording(first_line: str) -> bool:
    return first_line.lstrip().startswith("{") and MAGIC in first_line


def read_recording(path: str, lines: Iterator[str]) -> Window:
    """A window from a recording's lines (the first one included)."""
    window: Window | None = None
    pending: list[tuple[int, str]] = []
    number = 0
    for number, line in enumerate(lines, 1):
        pending.append((number, line))
        if len(pending) < 2:
            continue
        window = _apply(path, window, *pending.pop(0), last=False)
    for number, line in pending:
        window = _apply(path, window, number, line, last=True)
    if window is None:
        raise K2InputError("empty recording", path=path)
    return window


def _apply(path: str, window: Window | None, number: int, line: str, *, last: bool) -> Window:
    if not line.strip():
        if window is None:
            raise K2InputError("expected a recording header on the first line", path=path, line=number)
        return window
    try:
        obj = json.loads(line)
        if not isinstance(obj, dict):
            raise ValueError("not an object")
        if window is None:
            return _header(path, number, obj)
        _record(window, obj)
        return window
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        if last and not line.endswith("\n") and window is not None:
            window.warnings.append(
                f"{path}:{number}: truncated last line dropped (the run was stopped mid-write)"
            )
            return window
        raise K2InputError(f"malformed recording line ({exc}); expected one JSON object of "
                           f"format {MAGIC} {FORMAT_VERSION}", path=path, line=number) from None


def _header(path: str, number: int, obj: dict[str, Any]) -> Window:
    version = obj.get(MAGIC)
    if version != FORMAT_VERSION:
        raise K2InputError(f"unsupported recording version {version!r}; expected {FORMAT_VERSION}",
                           path=path, line=number)
    interval = float(obj["interval"])
    if not interval > 0:
        raise K2InputError(f"recording header: expected an interval > 0 seconds, got {obj['interval']!r}",
                           path=path, line=number)
    return Window(
        source=f"replay of {obj.get('source', 'a recording')} recording {Path(path).name}",
        interval=interval,
        planned=None if obj.get("planned") is None else float(obj["planned"]),
        restarts_unobservable=obj.get("restarts_unobservable"),
    )


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


_KINDS = frozenset(get_args(EventKind))


def _record(window: Window, obj: dict[str, Any]) -> None:
    if "t" in obj:
        t = float(obj["t"])
        if window.ended is not None and t < window.ended:
            raise ValueError(f"round at {t} before the previous round at {window.ended}")
        samples = [(int(k), _nan(c), _nan(r)) for k, c, r in obj["s"]]
        keys = [k for k, _, _ in samples]
        if any(not 0 <= k < len(window.containers) for k in keys):
            raise ValueError(f"a sample of an undeclared container in {keys}")
        if len(set(keys)) != len(keys):
            raise ValueError(f"a container sampled twice in one round: {keys}")
        window.add_round(t, samples)
    elif "c" in obj:
        if int(obj["c"]) != len(window.containers):
            raise ValueError(f"container {obj['c']} declared out of order")
        window.add_container(str(obj["id"]), str(obj["name"]), str(obj["service"]))
    elif "e" in obj:
        e = obj["e"]
        if e["kind"] not in _KINDS:
            raise ValueError(f"unknown event kind {e['kind']!r}")
        window.add_event(Event(float(e["t"]), e["kind"], str(e["container"]), e.get("service"), e.get("detail", "")))
    elif "gap" in obj:
        g = obj["gap"]
        window.add_gap(Gap(float(g["start"]), float(g["end"]), str(g["reason"])))
    elif "warn" in obj:
        window.warnings.append(str(obj["warn"]))
    elif "end" in obj:
        end = obj["end"]
        window.interrupted = bool(end.get("interrupted"))
        window.stop_reason = end.get("stop_reason")
    else:
        raise ValueError(f"unknown record with keys {sorted(obj)}")
