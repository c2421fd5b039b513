"""pytest-html pieces: the results table for the report's summary, and the plot extra for each test.

pytest-html is optional: nothing here imports it at module level, and `plot_extras` returns no extra when it
is not installed.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from ..budgets import Budgets
from ..criteria import judged_of
from ..window import TOTAL, Window
from .markdown import SYMBOLS
from .plots import service_plot_svg
from .table import Verdicts, build_rows, columns, header_percentile, partial, summary_lines

if TYPE_CHECKING:
    from ..run import BudgetRun

_STYLE = (
    "<style>.k2budget table{border-collapse:collapse}"
    ".k2budget th,.k2budget td{padding:2px 8px;border:1px solid #ccc}"
    ".k2budget td:nth-child(n+2):nth-child(-n+5){text-align:right}"
    ".k2budget .k2-passed{background:#e6f4ea}.k2budget .k2-failed{background:#fce8e6}"
    ".k2budget .k2-no-data{background:#f1f3f4}.k2budget .k2-total{font-weight:bold}</style>"
)


def _name(service: str) -> str:
    return "<b>Total</b>" if service == TOTAL else f"<code>{html.escape(service)}</code>"


# Summary lines mix service names with free text (figures with `>`, reasons, the source): names are marked
# with control characters, the whole line escaped, then the marks become markup.
_MARKED = re.compile("\x02(.*?)\x03")


def _mark(service: str) -> str:
    return f"\x02{service}\x03"


def _line(text: str) -> str:
    return _MARKED.sub(lambda m: _name(html.unescape(m.group(1))), html.escape(text))


def summary_html(budgets: Budgets, window: Window, verdicts: Verdicts) -> str:
    """The results table with who is over budget, as one HTML fragment for pytest_html_results_summary."""
    rows = build_rows(budgets, verdicts)
    percentile = header_percentile(rows)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in columns(rows))
    body = []
    for row in rows:
        figures = [row.cpu_budget(), row.cpu_actual(percentile), row.ram_budget(), row.ram_actual()]
        cells = [_name(row.service), *(html.escape(f) for f in figures), f"{SYMBOLS[row.status]} {row.status}"]
        classes = f"k2-{row.status.replace(' ', '-')}" + (" k2-total" if row.is_total else "")
        body.append(f'<tr class="{classes}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    notes = []
    marker = partial(window)
    if marker:
        notes.append(f"<p><b>{html.escape(marker)}</b></p>")
    notes += [f"<p><b>{label}:</b> {_line(text)}</p>" for label, text in summary_lines(budgets, window, rows, _mark)]
    return (
        f'{_STYLE}<div class="k2budget"><h2>Resource budgets: {html.escape(budgets.stack_name)}</h2>'
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{''.join(notes)}</div>"
    )


def plot_extras(svg: str, name: str = "CPU and RAM over the window") -> list[dict[str, Any]]:
    """The plot as a pytest-html image extra, base64-encoded: `--self-contained-html` embeds it as a data URI,
    a plain report writes it to its assets directory. No extra when pytest-html is not installed."""
    try:
        from pytest_html import extras
    except ImportError:
        return []
    encoded = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return [extras.svg(encoded, name=name)]


class HtmlHooks:
    """pytest-html's hooks for a budget run; the plugin registers this only when pytest-html is active."""

    def __init__(self, run: BudgetRun) -> None:
        self.run = run
        # One plot per service, drawn once however many of its tests carry it.
        self._svgs: dict[str, str] = {}

    @pytest.hookimpl(optionalhook=True)
    def pytest_html_results_summary(self, prefix: list[str]) -> None:
        if self.run.window is not None:
            prefix.append(summary_html(self.run.budgets, self.run.window, self.run.verdicts))

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if report.when != "call" or self.run.window is None:
            return
        judged = judged_of(report.user_properties)
        if judged is None:
            return
        service = judged[0]
        if service not in self._svgs:
            self._svgs[service] = service_plot_svg(self.run.window, self.run.budget(service))
        # pytest-html reads extras from this attribute, which TestReport does not declare.
        report.extras = [*getattr(report, "extras", []), *plot_extras(self._svgs[service])]  # type: ignore[attr-defined]
