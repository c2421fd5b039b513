"""The one live line of a burn-in: rewritten in place on a terminal, printed every few minutes in CI logs."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .units import format_duration


@dataclass(frozen=True)
class Status:
    elapsed: float
    planned: float
    containers: int
    samples: int
    nearest: str | None = None

    def line(self) -> str:
        remaining = max(self.planned - self.elapsed, 0.0)
        parts = [
            f"k2budget burn-in {format_duration(self.elapsed)} / {format_duration(self.planned)} "
            f"({format_duration(remaining)} left)",
            f"{self.containers} containers",
            f"{self.samples} samples",
        ]
        if self.nearest:
            parts.append(self.nearest)
        return ", ".join(parts)


class Progress:
    """Shows `Status` updates through `write` (text as is, no newline added).

    On a TTY every update rewrites the line (`\\r`); otherwise a line is written at the first update and
    then at most every `every` seconds, so a 24 h CI log gets a few hundred lines, not 86,400.
    """

    def __init__(self, write: Callable[[str], object], *, tty: bool, every: float = 180.0,
                 clock: Callable[[], float] = time.monotonic, columns: int = 0) -> None:
        self._write = write
        self.tty = tty
        # A line wider than the terminal wraps, and `\r` would rewrite only its last row.
        self.columns = columns
        self.every = every
        self._clock = clock
        self._last: float | None = None
        self._width = 0

    @classmethod
    def silent(cls) -> Progress:
        return cls(lambda _text: None, tty=False)

    @classmethod
    def for_terminal(cls, terminal: Any) -> Progress:
        """Through pytest's terminal reporter (`write(text, flush=True)`, `isatty`); silent without one."""
        if terminal is None:
            return cls.silent()
        columns = int(getattr(getattr(terminal, "_tw", None), "fullwidth", 0) or 0)
        return cls(lambda text: terminal.write(text, flush=True), tty=bool(getattr(terminal, "isatty", False)),
                   columns=columns)

    def update(self, status: Status) -> None:
        line = status.line()
        if self.tty:
            if self.columns > 1:
                line = line[: self.columns - 1]
            # Pad over the previous line's tail: a shorter line would leave its end on screen.
            self._write("\r" + line.ljust(self._width))
            self._width = len(line)
            return
        now = self._clock()
        if self._last is None or now - self._last >= self.every:
            self._last = now
            self._write(line + "\n")

    def finish(self, status: Status, outcome: str = "") -> None:
        """The closing line, always written, ending the in-place line on a TTY."""
        line = status.line() + (f": {outcome}" if outcome else "")
        if self.tty:
            self._write("\r" + line.ljust(self._width) + "\n")
        else:
            self._write(line + "\n")
        self._width = 0
