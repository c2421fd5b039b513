"""One budget run: its settings and budgets, the window its source produced, and the verdicts judged on it.

This is what the `k2_burn_in` fixture hands to a user's own tests, so its read side is public API:
`series(service)`, `events(service)`, `budget(service)`, `window`, `budgets`.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from . import criteria
from .budgets import Budgets, ServiceBudget
from .criteria import Verdict
from .errors import K2InputError
from .options import Settings
from .recording import dump_recording, read_recording
from .window import TOTAL, Event, Series, Window


class K2BudgetWarning(UserWarning):
    """Something a budget run should know but that does not decide a verdict."""


class BudgetRun:
    def __init__(self, settings: Settings, budgets: Budgets, *, is_worker: bool = False) -> None:
        self.settings = settings
        self.budgets = budgets
        self.is_worker = is_worker
        self.replay_from: Path | None = None
        self.window: Window | None = None
        self.verdicts: dict[tuple[str, str], Verdict] = {}
        self.recording_path: Path | None = None
        self._workers_copy: Path | None = None
        self.written: list[Path] = []

    # --- loading ---------------------------------------------------------------------------

    def load(self, terminal: Any = None) -> Window:
        """The window, sampled or loaded on first use and kept for the session."""
        if self.window is None:
            self.window = self._load(terminal)
        return self.window

    def _load(self, terminal: Any) -> Window:
        settings = self.settings
        if self.replay_from is not None:
            with self.replay_from.open(encoding="utf-8") as handle:
                return read_recording(str(self.replay_from), handle)
        if settings.mode == "replay":
            from .sources.replay import load_replay

            assert settings.replay_path is not None
            return load_replay(settings.replay_path, self.budgets, settings.replay_interval,
                               settings.compose_project)
        if settings.mode == "prometheus":
            from .sources.prometheus import load_prometheus

            return load_prometheus(self.budgets, settings)
        if settings.mode == "live":
            from .progress import Progress
            from .sources.docker import run_burn_in

            self.recording_path = settings.record_path
            return run_burn_in(self.budgets, settings, Progress.for_terminal(terminal))
        raise K2InputError("no budget run was asked for")

    def recording_for_workers(self) -> Path:
        """A file xdist workers replay, so the stack is sampled (or queried) once, not once per worker."""
        if self.recording_path is not None:
            return self.recording_path
        if self._workers_copy is None:
            with tempfile.NamedTemporaryFile("w", prefix="k2budget-", suffix=".jsonl", delete=False) as handle:
                self._workers_copy = Path(handle.name)
            dump_recording(self.load(), self._workers_copy)
        return self._workers_copy

    def close(self) -> None:
        """Remove what the run wrote only for its own use (the workers' copy of a replayed window)."""
        if self._workers_copy is not None:
            self._workers_copy.unlink(missing_ok=True)
            self._workers_copy = None

    # --- reading (the fixture's public side) ----------------------------------------------------

    def series(self, service: str) -> Series:
        """Per-round sums over the service's containers: `.times` (Unix s), `.cpu` (cores), `.ram` (bytes)."""
        return self.load().series(service)

    def events(self, service: str) -> list[Event]:
        """Restarts, recreations, OOM kills and the like, in time order."""
        return sorted(self.load().events_of(service), key=lambda e: e.time)

    def budget(self, service: str) -> ServiceBudget:
        return self.budgets.total if service == TOTAL else self.budgets.service(service)

    def verdict(self, service: str, criterion: str) -> Verdict:
        key = (service, criterion)
        if key not in self.verdicts:
            self.verdicts[key] = criteria.judge(self.load(), self.budgets, service, criterion)
        return self.verdicts[key]

    def window_warnings(self) -> list[str]:
        window = self.load()
        messages = list(window.warnings)
        unbudgeted = [s for s in window.services() if s not in self.budgets.names]
        if unbudgeted:
            messages.append(
                "containers of the stack without a budget (counted in TOTAL only): "
                + ", ".join(f"{s} ({', '.join(c.name for c in window.containers_of(s))})" for s in unbudgeted)
            )
        return messages

    # --- reports ---------------------------------------------------------------------------

    def run_date(self) -> str:
        window = self.load()
        if window.started is None or window.ended is None:
            return "no samples"
        fmt = "%Y-%m-%d %H:%M:%SZ"
        return f"{time.strftime(fmt, time.gmtime(window.started))} to {time.strftime(fmt, time.gmtime(window.ended))}"

    def write_markdown(self) -> None:
        if self.settings.results_md is None and self.settings.update_doc is None:
            return
        from .reports.markdown import results_section, update_doc, write_results

        section = results_section(self.budgets, self.load(), self.verdicts, run_date=self.run_date())
        if self.settings.results_md is not None:
            self.settings.results_md.parent.mkdir(parents=True, exist_ok=True)
            write_results(self.settings.results_md, section)
            self.written.append(self.settings.results_md)
        if self.settings.update_doc is not None:
            update_doc(self.settings.update_doc, section)
            self.written.append(self.settings.update_doc)
