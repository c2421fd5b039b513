"""Replay: judge a run recorded earlier, either the step doc's docker stats CSV or a k2budget recording."""

from __future__ import annotations

import math
import os
from array import array
from collections.abc import Iterator
from pathlib import Path

from ..budgets import Budgets
from ..errors import K2InputError
from ..naming import service_for_name
from ..recording import is_recording, read_recording
from ..units import parse_stats_size
from ..window import Window

CSV_FORMAT = "{{.Name}},{{.CPUPerc}},{{.MemUsage}},{{.MemPerc}}"
CSV_RESTARTS_UNOBSERVABLE = (
    "the docker stats CSV records no restarts or OOM kills (keep a k2budget recording, or check `docker inspect`)"
)


def load_replay(path: Path, budgets: Budgets, interval: float, project: str | None = None) -> Window:
    """A window from a recording file, whichever of the two formats it holds."""
    try:
        handle = path.open("r", encoding="utf-8", newline="")
    except FileNotFoundError:
        raise K2InputError("replay file not found", path=str(path)) from None
    except OSError as exc:
        raise K2InputError(f"cannot read replay file: {exc.strerror}", path=str(path)) from None
    with handle:
        try:
            first = handle.readline()
            if not first:
                raise K2InputError(f"empty replay file; expected {CSV_FORMAT} lines or a k2budget recording",
                                   path=str(path))
            lines = _chain(first, handle)
            if is_recording(first):
                return read_recording(str(path), lines)
            return read_stats_csv(str(path), lines, budgets, interval, project, end=os.path.getmtime(path))
        except UnicodeDecodeError as exc:
            raise K2InputError(f"not a text file ({exc.reason})", path=str(path)) from None


def _chain(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


class _Columns:
    """One container's samples, held compactly until the whole file is read."""

    __slots__ = ("cpu", "ram", "rounds")

    def __init__(self) -> None:
        self.rounds = array("i")
        self.cpu = array("d")
        self.ram = array("d")


def read_stats_csv(
    path: str,
    lines: Iterator[str],
    budgets: Budgets,
    interval: float,
    project: str | None,
    *,
    end: float,
) -> Window:
    """The step doc's loop output: no header, no timestamps; a round ends when a container name repeats.

    The loop's own sleep gives the interval; the file's last write gives the end of the window, since the
    loop appends as it goes.
    """
    project = project or budgets.compose_project
    columns: dict[str, _Columns] = {}
    seen_this_round: set[str] = set()
    round_index = 0
    warnings: list[str] = []
    size_cache: dict[str, int] = {}
    pending: tuple[int, str] | None = None
    number = 0
    for number, raw in enumerate(lines, 1):
        if pending is not None:
            round_index = _csv_line(path, *pending, columns, seen_this_round, round_index, size_cache)
        pending = (number, raw)
    if pending is not None:
        last_number, last = pending
        try:
            round_index = _csv_line(path, last_number, last, columns, seen_this_round, round_index, size_cache)
        except K2InputError:
            if last.endswith("\n"):
                raise
            warnings.append(f"{path}:{last_number}: truncated last line dropped (the loop was stopped mid-write)")
    if not columns:
        raise K2InputError(f"no samples; expected lines of {CSV_FORMAT}", path=path, line=number or None)

    rounds = round_index + 1 if seen_this_round else round_index
    window = Window(source=f"replay of docker stats CSV {Path(path).name}", interval=interval,
                    restarts_unobservable=CSV_RESTARTS_UNOBSERVABLE)
    window.warnings.extend(warnings)
    window.add_rounds([end - (rounds - 1 - i) * interval for i in range(rounds)])
    for name, col in columns.items():
        container = window.add_container(name, name, service_for_name(name, budgets.names, project))
        window.extend(container.key, col.rounds, col.cpu, col.ram)
    return window


def _csv_line(
    path: str,
    number: int,
    raw: str,
    columns: dict[str, _Columns],
    seen: set[str],
    round_index: int,
    size_cache: dict[str, int],
) -> int:
    line = raw.rstrip("\r\n")
    if not line.strip():
        return round_index
    fields = line.split(",")
    if len(fields) != 4 or not fields[0].strip():
        raise K2InputError(f"expected 4 fields {CSV_FORMAT}, got {len(fields)}", path=path, line=number)
    name, cpu_text, mem_text = fields[0].strip(), fields[1].strip(), fields[2].strip()
    # docker stats prints these for a container that is not running: it was there, with no sample.
    running = not (cpu_text == "--" or mem_text in ("--", "0B / 0B", "-- / --"))
    sample = _csv_sample(path, number, cpu_text, mem_text, size_cache) if running else None
    # Only a line that parsed moves the rounds on, so a truncated last line leaves no trace.
    if name in seen:
        seen.clear()
        round_index += 1
    seen.add(name)
    col = columns.get(name)
    if col is None:
        col = columns[name] = _Columns()
    if sample is not None:
        col.rounds.append(round_index)
        col.cpu.append(sample[0])
        col.ram.append(sample[1])
    return round_index


def _csv_sample(path: str, number: int, cpu_text: str, mem_text: str, size_cache: dict[str, int]) -> tuple[float, int]:
    """(cores, RAM bytes) of one line: CPU% is percent of one core, MemUsage's left side the working set."""
    # Called for every line of a file that may hold a million: messages are built only when raised.
    if not cpu_text.endswith("%"):
        raise K2InputError(_expected_cpu(cpu_text), path=path, line=number)
    try:
        cores = float(cpu_text[:-1]) / 100
    except ValueError:
        raise K2InputError(_expected_cpu(cpu_text), path=path, line=number) from None
    if not math.isfinite(cores) or cores < 0:
        raise K2InputError(f"expected a CPU percentage >= 0, got {cpu_text!r}", path=path, line=number)
    used, slash, _limit = mem_text.partition("/")
    if not slash:
        raise K2InputError(f"expected MemUsage as 'used / limit' such as 12.5MiB / 1GiB, got {mem_text!r}",
                           path=path, line=number)
    used = used.strip()
    ram = size_cache.get(used)
    if ram is None:
        try:
            ram = parse_stats_size(used)
        except ValueError as exc:
            raise K2InputError(f"expected {exc}", path=path, line=number) from None
        size_cache[used] = ram
    return cores, ram


def _expected_cpu(cpu_text: str) -> str:
    return f"expected CPU as a percentage such as 12.34%, got {cpu_text!r}"
