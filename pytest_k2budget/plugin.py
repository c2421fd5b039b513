"""The pytest face of k2budget: options, the budgets file as test items, the `k2_burn_in` fixture, reports.

Hooks stay thin: settings come from `options`, the window from a source (through `run.BudgetRun`),
verdicts from `criteria`, every report from `reports`. Nothing is registered, collected or printed unless a
budget run is asked for (`--k2-burn-in`, `--k2-replay` or `--k2-source=prometheus`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import criteria, options
from .budgets import load_budgets
from .errors import K2InputError
from .run import BudgetRun, K2BudgetWarning
from .window import TOTAL

RUN_KEY = pytest.StashKey[BudgetRun]()
WORKER_RECORDING = "k2budget_recording"


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    try:
        settings = options.resolve(config)
        if settings.mode == "off":
            return
        budgets = load_budgets(settings.budgets_path)
        if settings.update_doc is not None:
            from .reports.markdown import check_doc

            check_doc(settings.update_doc)
    except K2InputError as exc:
        raise pytest.UsageError(str(exc)) from None
    worker_input = getattr(config, "workerinput", None)
    run = BudgetRun(settings, budgets, is_worker=worker_input is not None)
    if worker_input is not None and WORKER_RECORDING in worker_input:
        run.replay_from = Path(worker_input[WORKER_RECORDING])
    config.stash[RUN_KEY] = run
    for message in budgets.warnings:
        config.issue_config_time_warning(K2BudgetWarning(message), stacklevel=2)
    _ensure_collected(config, settings.budgets_path)
    config.pluginmanager.register(BudgetSession(config, run), "k2budget-session")
    # Plots cost seconds: draw them only when pytest-html is writing a report.
    if config.pluginmanager.hasplugin("html") and config.getoption("htmlpath", None):
        from .reports.html import HtmlHooks

        config.pluginmanager.register(HtmlHooks(run), "k2budget-html")


def _ensure_collected(config: pytest.Config, budgets_path: Path) -> None:
    """A budget run judges the budgets file even when the command line names only other tests."""
    target = budgets_path.resolve()
    for arg in config.args:
        named = (config.invocation_params.dir / arg.split("::", 1)[0]).resolve()
        if named == target or named in target.parents:
            return
    config.args.append(str(target))


class BudgetSession:
    """Hooks of a budget run, registered only when one is asked for."""

    def __init__(self, config: pytest.Config, run: BudgetRun) -> None:
        self.config = config
        self.run = run

    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Sample or load the window once, before any test; an xdist worker waits for its controller's."""
        if self.config.option.collectonly or self.run.is_worker:
            return
        terminal = self.config.pluginmanager.get_plugin("terminalreporter")
        try:
            self.run.load(terminal)
        except K2InputError as exc:
            raise pytest.UsageError(str(exc)) from None
        for message in self.run.window_warnings():
            # Issued as config-time warnings: pytest's warning capture is not active yet at session start.
            self.config.issue_config_time_warning(K2BudgetWarning(message), stacklevel=1)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist: workers judge the controller's window from its recording instead of sampling again."""
        if self.run.window is not None:
            node.workerinput[WORKER_RECORDING] = str(self.run.recording_for_workers())

    def pytest_collect_file(self, file_path: Path, parent: pytest.Collector) -> BudgetsFile | None:
        if file_path.resolve() == self.run.settings.budgets_path.resolve():
            return BudgetsFile.from_parent(parent, path=file_path)
        return None

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Keep each verdict for the reports; under xdist the controller re-judges what its workers judged."""
        judged = criteria.judged_of(report.user_properties)
        if self.run.window is not None and judged is not None:
            self.run.verdict(*judged)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.run.window is None or self.run.is_worker:
            return
        from .reports.terminal import terminal_table

        terminalreporter.section(f"k2budget: {self.run.budgets.stack_name}")
        terminalreporter.write_line(terminal_table(self.run.budgets, self.run.window, self.run.verdicts))
        if self.run.recording_path is not None:
            terminalreporter.write_line(f"recording: {self.run.recording_path}")
        for path in self.run.written:
            terminalreporter.write_line(f"wrote {path}")

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.run.close()
        if self.run.window is None or self.run.is_worker:
            return
        try:
            self.run.write_markdown()
        except (K2InputError, OSError) as exc:
            # A report that cannot be written must not hide the verdict: the exit code still tells.
            session.config.issue_config_time_warning(
                K2BudgetWarning(f"could not write the Results section: {exc}"), stacklevel=1
            )


class BudgetsFile(pytest.File):
    def collect(self) -> Iterator[ServiceNode]:
        budgets = self.config.stash[RUN_KEY].budgets
        for budget in budgets.services:
            yield ServiceNode.from_parent(self, name=budget.name, criteria_names=criteria.SERVICE_CRITERIA,
                                          line=budget.line)
        yield ServiceNode.from_parent(self, name=TOTAL, criteria_names=criteria.TOTAL_CRITERIA,
                                      line=budgets.total.line)


class ServiceNode(pytest.Collector):
    def __init__(self, *, criteria_names: tuple[str, ...], line: int | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.criteria_names = criteria_names
        self.line = line

    def collect(self) -> Iterator[BudgetItem]:
        for criterion in self.criteria_names:
            yield BudgetItem.from_parent(self, name=criterion)


class BudgetExceeded(Exception):
    """A verdict of failure; its message is the whole evidence, so no traceback is shown."""


class BudgetItem(pytest.Item):
    """One service x one criterion; its verdict comes from `criteria`, its numbers go to JUnit XML."""

    @property
    def service(self) -> str:
        assert self.parent is not None
        return self.parent.name

    def runtest(self) -> None:
        run = self.config.stash[RUN_KEY]
        try:
            run.load(self.config.pluginmanager.get_plugin("terminalreporter"))
        except K2InputError as exc:
            raise BudgetExceeded(str(exc)) from None
        verdict = run.verdict(self.service, self.name)
        self.user_properties.extend(verdict.properties())
        if verdict.status == "skipped":
            # Reported at the budget's line in the budgets file, not at this line of the plugin.
            raise pytest.skip.Exception(verdict.message, _use_item_location=True)
        if verdict.status == "failed":
            raise BudgetExceeded(verdict.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, BudgetExceeded):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = getattr(self.parent, "line", None)
        return self.path, None if line is None else line - 1, f"{self.service}::{self.name}"


@pytest.fixture(scope="session")
def k2_burn_in(request: pytest.FixtureRequest) -> BudgetRun:
    """The session's burn-in: budgets, the window (numpy series per service) and its events.

    Request it to add criteria of your own; it samples or loads once per session, shared with the
    budgets' own tests.
    """
    run = request.config.stash.get(RUN_KEY, None)
    if run is None:
        pytest.skip("no budget run: pass --k2-burn-in=DURATION, --k2-replay=PATH or --k2-source=prometheus")
    try:
        run.load(request.config.pluginmanager.get_plugin("terminalreporter"))
    except K2InputError as exc:
        pytest.fail(str(exc), pytrace=False)
    return run
