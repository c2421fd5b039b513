"""Reports: the results table in the terminal, the step doc's Results section (written and updated in place),
the pytest-html summary and extras, and the per-service plots."""

from __future__ import annotations

import base64
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from pytest_k2budget.budgets import Budgets, parse_budgets
from pytest_k2budget.criteria import judge_all
from pytest_k2budget.errors import K2InputError
from pytest_k2budget.reports.html import plot_extras, summary_html
from pytest_k2budget.reports.markdown import results_section, update_doc, write_results
from pytest_k2budget.reports.plots import envelope, service_plot_svg
from pytest_k2budget.reports.terminal import terminal_table
from pytest_k2budget.window import Event, Gap, Window

T0 = 1_771_372_800.0  # 2026-02-18 00:00:00Z

STACK = """
version: 1
stack: {name: k2 platform v2, total: {cpu: 15.5, ram: 21.75GB}}
services:
  feed-handler-binance:  {cpu: 0.5, ram: 256MB}
  feed-handler-kraken:   {cpu: 0.5, ram: 256MB}
  feed-handler-coinbase: {cpu: 0.5, ram: 256MB}
  redpanda:              {cpu: 2.0, ram: 4GB}
  clickhouse:            {cpu: 4.0, ram: 8GB}
  spark-iceberg:         {cpu: 2.0, ram: 4GB}
  prefect-server:        {cpu: 0.5, ram: 512MB}
  prefect-worker:        {cpu: 0.5, ram: 512MB}
  prefect-db:            {cpu: 0.5, ram: 512MB}
  minio:                 {cpu: 0.5, ram: 1GB}
  iceberg-rest:          {cpu: 0.5, ram: 512MB}
  prometheus:            {cpu: 0.5, ram: 512MB}
  grafana:               {cpu: 0.5, ram: 256MB}
"""
HEADER = "| Service | CPU Budget | CPU Actual (p99) | RAM Budget | RAM Actual (max) | Status |"

STEP_DOC = (Path(__file__).parent / "data" / "step-doc.md").read_text(encoding="utf-8")


def stack_window(
    budgets: Budgets,
    share: dict[str, tuple[float, float]] | None = None,
    *,
    missing: tuple[str, ...] = (),
    rounds: int = 288,
    interval: float = 300.0,
    **window_args: object,
) -> Window:
    """Every budgeted service but `missing` runs one container at a constant share (CPU, RAM) of its budget,
    half of each by default."""
    share = share or {}
    window = Window(source="replay", interval=interval, **window_args)  # type: ignore[arg-type]
    keys = {
        b.name: window.add_container(b.name, f"k2-{b.name}-1", b.name).key
        for b in budgets.services
        if b.name not in missing
    }
    for index in range(rounds):
        window.add_round(
            T0 + index * interval,
            [
                (keys[b.name], b.cpu * share.get(b.name, (0.5, 0.5))[0], b.ram * share.get(b.name, (0.5, 0.5))[1])
                for b in budgets.services
                if b.name in keys
            ],
        )
    return window


@pytest.fixture
def budgets() -> Budgets:
    return parse_budgets(STACK)


def table_lines(section: str) -> list[str]:
    return [line for line in section.splitlines() if line.startswith("|")]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip("|").split("|")]


def row_of(section: str, name: str) -> list[str]:
    found = [cells(line) for line in table_lines(section) if cells(line)[0] == name]
    assert len(found) == 1, f"{name} not in the table exactly once"
    return found[0]


def field(section: str, label: str) -> str | None:
    match = re.search(rf"^\*\*{re.escape(label)}:\*\* (.*)$", section, re.MULTILINE)
    return match.group(1) if match else None


# --- Markdown Results section --------------------------------------------------------------------


def test_results_section_has_the_step_docs_table(budgets: Budgets) -> None:
    window = stack_window(budgets, {"clickhouse": (1.1, 0.5), "redpanda": (0.5, 1.2)},
                          restarts_unobservable="a docker stats CSV shows no restarts")
    section = results_section(budgets, window, judge_all(window, budgets), "2026-02-18")

    lines = section.splitlines()
    assert lines[:4] == ["## Results", "", "Run date: 2026-02-18", ""]
    table = table_lines(section)
    assert table[0] == HEADER
    assert re.fullmatch(r"\|(-+\|){6}", table[1])
    assert [cells(line)[0] for line in table[2:]] == [f"`{b.name}`" for b in budgets.services] + ["**Total**"]
    assert row_of(section, "`clickhouse`") == ["`clickhouse`", "4.00", "4.40", "8GB", "4.00GiB", "❌"]
    assert row_of(section, "`redpanda`") == ["`redpanda`", "2.00", "1.00", "4GB", "4.80GiB", "❌"]
    assert row_of(section, "`feed-handler-binance`") == ["`feed-handler-binance`", "0.50", "0.25", "256MB",
                                                         "128.00MiB", "✅"]
    # Half of the services' 13 cores and 20.5 GiB, plus clickhouse's 2.4 cores and redpanda's 2.8 GiB over half.
    assert row_of(section, "**Total**") == ["**Total**", "**15.50**", "**8.90**", "**21.75GB**", "**13.05GiB**",
                                            "✅"]
    assert field(section, "Any services over budget") == (
        "`redpanda` (ram_max 4.80GiB > 4GB), `clickhouse` (cpu_p99 4.40 > 4.00 cores)"
    )
    assert field(section, "Window") == "24h, 288 rounds every 5m, 3,744 samples; source: replay"
    assert field(section, "Not judged") == (
        "restarts for every service (restarts and OOM kills cannot be judged: a docker stats CSV shows no restarts)"
    )
    assert "PARTIAL" not in section
    assert section.endswith("\n")


def test_every_service_within_budget_says_none(budgets: Budgets) -> None:
    window = stack_window(budgets)
    section = results_section(budgets, window, judge_all(window, budgets), "today")
    assert field(section, "Any services over budget") == "None"
    assert {cells(line)[-1] for line in table_lines(section)[2:]} == {"✅"}
    assert field(section, "Not judged") is None


def test_every_broken_criterion_is_named_with_its_evidence(budgets: Budgets) -> None:
    window = stack_window(budgets, {"spark-iceberg": (2.5, 0.5)})
    window.add_event(Event(T0 + 600, "oom_kill", "k2-spark-iceberg-1", "spark-iceberg", "exit 137"))
    section = results_section(budgets, window, judge_all(window, budgets), "today")
    assert field(section, "Any services over budget") == (
        "`spark-iceberg` (cpu_p99 5.00 > 2.00 cores, cpu_spike 5.00 >= 4.00 cores, restarts (OOM kill))"
    )


def test_service_without_samples_is_no_data_never_a_pass(budgets: Budgets) -> None:
    window = stack_window(budgets, missing=("grafana",))
    section = results_section(budgets, window, judge_all(window, budgets), "today")
    assert row_of(section, "`grafana`") == ["`grafana`", "0.50", "--", "256MB", "--", "⬜"]
    assert field(section, "No samples (their tests fail)") == "`grafana`"
    assert field(section, "Any services over budget") == "None"


def test_deselected_criteria_are_shown_as_not_judged(budgets: Budgets) -> None:
    window = stack_window(budgets)
    # `pytest -k ram_max`: only the RAM verdicts exist.
    verdicts = {k: v for k, v in judge_all(window, budgets).items() if k[1] == "ram_max"}
    section = results_section(budgets, window, verdicts, "today")
    assert row_of(section, "`redpanda`")[2] == "not judged"
    assert row_of(section, "`redpanda`")[4] == "2.00GiB"
    assert row_of(section, "**Total**")[2] == "**not judged**"
    assert field(section, "Not judged") == (
        "cpu_p99 for every service and **Total** (not run); cpu_spike, restarts for every service (not run)"
    )
    # `pytest budgets.yml::redpanda`: every other service was not judged at all.
    only = {k: v for k, v in judge_all(window, budgets).items() if k[0] == "redpanda"}
    section = results_section(budgets, window, only, "today")
    assert row_of(section, "`redpanda`")[-1] == "✅"
    assert row_of(section, "`grafana`") == ["`grafana`", "0.50", "not judged", "256MB", "not judged", "⬜"]
    assert row_of(section, "**Total**")[-1] == "⬜"


def test_containers_without_a_budget_are_named_and_counted_in_total(budgets: Budgets) -> None:
    window = stack_window(budgets)
    key = window.add_container("j", "k2-jaeger-1", "jaeger").key
    window.extend(key, np.arange(288), np.full(288, 1.0), np.full(288, 2.0**30))
    section = results_section(budgets, window, judge_all(window, budgets), "today")
    assert field(section, "Without a budget (counted in Total only)") == "`jaeger`"
    assert row_of(section, "**Total**")[2:5] == ["**7.50**", "**21.75GB**", "**11.25GiB**"]
    assert "jaeger" not in "".join(table_lines(section))


def test_partial_window_and_gaps_are_marked(budgets: Budgets) -> None:
    window = stack_window(budgets, rounds=36, planned=86400.0, interrupted=True, stop_reason="interrupted by SIGTERM")
    window.add_gap(Gap(T0 + 3000, T0 + 3600, "Docker Engine unreachable"))
    verdicts = judge_all(window, budgets)
    section = results_section(budgets, window, verdicts, "today")
    # Rounds every 5m: the gap from 50m to 60m lost the round at 55m, which the covered time leaves out.
    assert "**PARTIAL window (covered 2h55m of 24h, interrupted by SIGTERM)**" in section.splitlines()
    assert field(section, "Gaps") == "1 gap without samples, 5m in all (Docker Engine unreachable)"
    terminal = terminal_table(budgets, window, verdicts)
    assert "PARTIAL window (covered 2h55m of 24h, interrupted by SIGTERM)" in terminal.splitlines()


def test_percentile_other_than_99_is_named(budgets: Budgets) -> None:
    custom = parse_budgets(STACK.replace("version: 1", "version: 1\ndefaults: {cpu_percentile: 95}")
                           .replace("grafana:               {cpu: 0.5, ram: 256MB}",
                                    "grafana: {cpu: 0.5, ram: 256MB, cpu_percentile: 90}"))
    window = stack_window(custom)
    section = results_section(custom, window, judge_all(window, custom), "today")
    assert table_lines(section)[0] == HEADER.replace("(p99)", "(p95)")
    assert row_of(section, "`grafana`")[2] == "0.25 (p90)"
    assert row_of(section, "`minio`")[2] == "0.25"


def test_write_results_writes_the_section(budgets: Budgets, tmp_path: Path) -> None:
    window = stack_window(budgets)
    section = results_section(budgets, window, judge_all(window, budgets), "today")
    target = tmp_path / "results.md"
    write_results(target, section)
    assert target.read_text(encoding="utf-8") == section
    assert os.listdir(tmp_path) == ["results.md"]


# --- in-place update of the step doc ---------------------------------------------------------------


@pytest.fixture
def step_doc(tmp_path: Path) -> Path:
    target = tmp_path / "step-02-resource-validation.md"
    target.write_bytes(STEP_DOC.encode("utf-8"))
    return target


def _split(text: str) -> tuple[str, str, str]:
    """Before the Results body (heading line included), the body, and from the rule after it on."""
    head_end = text.index("\n", text.index("## Results")) + 1
    tail_start = text.index("\n---\n", head_end) + 1
    return text[:head_end], text[head_end:tail_start], text[tail_start:]


def test_update_doc_rewrites_only_the_results_section(budgets: Budgets, step_doc: Path) -> None:
    original = step_doc.read_bytes().decode("utf-8")
    window = stack_window(budgets, {"clickhouse": (1.1, 0.5)})
    section = results_section(budgets, window, judge_all(window, budgets), "2026-02-18")
    update_doc(step_doc, section)

    updated = step_doc.read_bytes().decode("utf-8")
    before, body, after = _split(updated)
    old_before, _, old_after = _split(original)
    assert before == old_before  # the heading line stays as written: "## Results (to fill in)"
    assert before.endswith("## Results (to fill in)\n")
    assert after == old_after
    # The body is the generated one, then the hand-written field the plugin does not own.
    assert body == "\n" + section.split("\n", 1)[1].strip("\n") + "\n\n**Tuning applied:** --\n\n"
    assert "Run date: --" not in updated
    assert "**Any services over budget:** `clickhouse` (cpu_p99 4.40 > 4.00 cores)" in body


def test_update_doc_twice_gives_the_same_doc(budgets: Budgets, step_doc: Path) -> None:
    window = stack_window(budgets)
    section = results_section(budgets, window, judge_all(window, budgets), "2026-02-18")
    update_doc(step_doc, section)
    once = step_doc.read_bytes()
    update_doc(step_doc, section)
    assert step_doc.read_bytes() == once
    assert once.decode("utf-8").count("**Tuning applied:**") == 1


def test_update_doc_keeps_crlf_line_endings(budgets: Budgets, step_doc: Path) -> None:
    crlf = STEP_DOC.encode("utf-8").replace(b"\n", b"\r\n")
    step_doc.write_bytes(crlf)
    window = stack_window(budgets)
    update_doc(step_doc, results_section(budgets, window, judge_all(window, budgets), "x"))
    updated = step_doc.read_bytes()
    assert b"\n" not in updated.replace(b"\r\n", b"")
    head = crlf[: crlf.index(b"\r\n", crlf.index(b"## Results")) + 2]
    tail = crlf[crlf.index(b"\r\n---\r\n\r\n## Related") :]
    assert updated.startswith(head)
    assert updated.endswith(tail)


def test_update_doc_section_ending_at_a_heading_or_the_end(tmp_path: Path, budgets: Budgets) -> None:
    window = stack_window(budgets)
    section = results_section(budgets, window, judge_all(window, budgets), "x")
    body = section.split("\n", 1)[1].strip("\n")
    doc = tmp_path / "doc.md"
    doc.write_text("# Step\n\n## Results\n```bash\n# not a heading\n---\n```\nold\n## Next\nkept\n", encoding="utf-8")
    update_doc(doc, section)
    assert doc.read_text(encoding="utf-8") == f"# Step\n\n## Results\n\n{body}\n\n## Next\nkept\n"
    doc.write_text("intro\n## Results\nold text", encoding="utf-8")
    update_doc(doc, section)
    assert doc.read_text(encoding="utf-8") == f"intro\n## Results\n\n{body}\n"


def test_update_doc_ignores_a_results_heading_inside_a_code_block(tmp_path: Path, budgets: Budgets) -> None:
    doc = tmp_path / "doc.md"
    text = "# Step\n\n```markdown\n## Results\n```\n"
    doc.write_text(text, encoding="utf-8")
    window = stack_window(budgets)
    with pytest.raises(K2InputError, match="no '## Results' heading"):
        update_doc(doc, results_section(budgets, window, judge_all(window, budgets), "x"))
    assert doc.read_text(encoding="utf-8") == text


def test_update_doc_errors(tmp_path: Path) -> None:
    with pytest.raises(K2InputError, match=r"missing\.md: --k2-update-doc: step doc not found"):
        update_doc(tmp_path / "missing.md", "## Results\n")
    doc = tmp_path / "doc.md"
    doc.write_text("# Step\n\n## Resultset\n", encoding="utf-8")
    with pytest.raises(K2InputError, match=r"doc\.md: --k2-update-doc: no '## Results' heading"):
        update_doc(doc, "## Results\n")


def test_update_doc_is_atomic(budgets: Budgets, step_doc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    window = stack_window(budgets)
    section = results_section(budgets, window, judge_all(window, budgets), "x")
    original = step_doc.read_bytes()
    step_doc.chmod(0o640)

    def interrupted(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(K2InputError, match=r"cannot write: .*No space left on device"):
        update_doc(step_doc, section)
    assert step_doc.read_bytes() == original
    assert os.listdir(step_doc.parent) == [step_doc.name]
    monkeypatch.undo()

    inode = step_doc.stat().st_ino
    update_doc(step_doc, section)
    assert os.listdir(step_doc.parent) == [step_doc.name]
    assert step_doc.stat().st_ino != inode  # replaced, not rewritten in place
    assert step_doc.stat().st_mode & 0o777 == 0o640


def test_update_doc_through_a_symlink_rewrites_its_target(budgets: Budgets, step_doc: Path) -> None:
    link = step_doc.parent / "link.md"
    link.symlink_to(step_doc.name)
    window = stack_window(budgets)
    update_doc(link, results_section(budgets, window, judge_all(window, budgets), "2026-02-18"))
    assert link.is_symlink()
    assert "Run date: 2026-02-18" in step_doc.read_text(encoding="utf-8")


# --- terminal -------------------------------------------------------------------------------------


def test_terminal_table(budgets: Budgets) -> None:
    window = stack_window(budgets, {"clickhouse": (1.1, 0.5)}, missing=("grafana",))
    text = terminal_table(budgets, window, judge_all(window, budgets))
    lines = text.splitlines()
    rows = [line.split("  ") for line in lines]
    rows = [[c.strip() for c in row if c.strip()] for row in rows]
    assert ["clickhouse", "4.00", "4.40", "8GB", "4.00GiB", "FAILED"] in rows
    assert ["grafana", "0.50", "--", "256MB", "--", "no data"] in rows
    assert ["TOTAL", "15.50", "8.65", "21.75GB", "10.12GiB", "passed"] in rows
    assert rows[0] == ["Service", "CPU Budget", "CPU Actual (p99)", "RAM Budget", "RAM Actual (max)", "Status"]
    assert "Any services over budget: clickhouse (cpu_p99 4.40 > 4.00 cores)" in lines
    assert "No samples (their tests fail): grafana" in lines


# --- pytest-html ----------------------------------------------------------------------------------


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self.open.append(tag)
        self.seen.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open.pop() == tag

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_summary_html_is_the_escaped_results_table(budgets: Budgets) -> None:
    odd = parse_budgets(STACK.replace("name: k2 platform v2", 'name: "k2 <v2> & co"'))
    window = stack_window(odd, {"clickhouse": (1.1, 0.5)})
    fragment = summary_html(odd, window, judge_all(window, odd))
    parser = _Tags()
    parser.feed(fragment)
    assert parser.open == []
    assert parser.seen.count("th") == 6
    assert parser.seen.count("tr") == 1 + len(odd.services) + 1
    text = "".join(parser.text)
    assert "k2 <v2> & co" in text and "<v2>" not in fragment
    assert "Any services over budget: clickhouse (cpu_p99 4.40 > 4.00 cores)" in text
    assert "<code>clickhouse</code> (cpu_p99 4.40 &gt; 4.00 cores)" in fragment
    assert "❌ failed" in text and "✅ passed" in text


def test_plot_extra_embeds_the_svg_as_pytest_html_expects() -> None:
    svg = '<svg xmlns="http://www.w3.org/2000/svg"/>'
    (extra,) = plot_extras(svg)
    assert extra["format_type"] == "image"
    assert extra["mime_type"] == "image/svg+xml"
    assert extra["extension"] == "svg"
    # pytest-html embeds an image as a data URI (self-contained) or an asset file only if it is base64.
    assert base64.b64decode(extra["content"], validate=True).decode("utf-8") == svg


def test_plot_extra_without_pytest_html(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytest_html", None)
    assert plot_extras("<svg/>") == []


# --- plots ----------------------------------------------------------------------------------------


def test_envelope_keeps_a_single_spike() -> None:
    times = T0 + np.arange(86400, dtype=np.float64)
    cpu = np.full(86400, 0.1)
    cpu[0] = np.nan  # a CPU rate has no figure in the first round
    cpu[50_000] = 3.0
    env = envelope(times, cpu, T0, 1.0, 600)
    assert env.downsampled
    assert env.x.size == env.low.size == env.high.size == 300
    assert np.nanmax(env.high) == 3.0
    spiked = np.flatnonzero(env.high == 3.0)
    assert spiked.size == 1
    width = 86399 / 300
    assert spiked[0] * width <= 50_000 < (spiked[0] + 1) * width
    assert np.all(env.low == 0.1)
    assert np.all(env.high[np.arange(300) != spiked[0]] == 0.1)


def test_envelope_breaks_the_line_at_gaps() -> None:
    times = T0 + np.concatenate([np.arange(0.0, 3600), np.arange(7200.0, 10800)])
    values = np.ones(times.size)
    env = envelope(times, values, T0, 1.0, 600)
    empty = np.isnan(env.high)
    assert empty.any() and np.all(np.isnan(env.low[empty]))
    assert np.all((env.x[empty] > 3600) & (env.x[empty] < 7200))
    # Few enough samples to draw them all: one NaN between the two runs.
    raw = envelope(times[::20], values[::20], T0, 20.0, 600)
    assert not raw.downsampled
    assert raw.x.size == 361 and np.isnan(raw.low[180]) and raw.x[181] == 7200.0


def test_service_plot_svg(budgets: Budgets) -> None:
    before = dict(matplotlib.rcParams)
    window = Window(source="replay", interval=1.0)
    key = window.add_container("c", "k2-spark-iceberg-1", "spark-iceberg").key
    n = 86400
    window.add_rounds(T0 + np.arange(n, dtype=np.float64))
    cpu = np.full(n, 0.2)
    cpu[40_000] = 5.0
    window.extend(key, np.arange(n), cpu, np.full(n, 2.0 * 2**30))
    window.add_gap(Gap(T0 + 60_000, T0 + 61_000, "Docker Engine unreachable"))
    svg = service_plot_svg(window, budgets.service("spark-iceberg"))
    assert svg.startswith("<?xml") and svg.rstrip().endswith("</svg>")
    assert ">spark-iceberg</text>" in svg
    assert ">budget</text>" in svg and ">spike limit</text>" in svg
    assert len(svg.encode()) < 60_000
    assert service_plot_svg(window, budgets.service("spark-iceberg")) == svg
    assert dict(matplotlib.rcParams) == before

    total = service_plot_svg(window, budgets.total)
    assert ">spike limit</text>" not in total  # the stack total has no spike criterion


def test_plot_of_a_service_without_samples(budgets: Budgets) -> None:
    window = stack_window(budgets, missing=("grafana",), rounds=3)
    svg = service_plot_svg(window, budgets.service("grafana"))
    assert ">no samples</text>" in svg


def test_thirteen_services_for_24h_at_1s_fit_a_5mb_report(budgets: Budgets) -> None:
    n = 86400
    rng = np.random.default_rng(7)
    window = Window(source="docker", interval=1.0, planned=86400.0)
    window.add_rounds(T0 + np.arange(n, dtype=np.float64))
    for budget in budgets.services:
        key = window.add_container(budget.name, f"k2-{budget.name}-1", budget.name).key
        cpu = np.abs(rng.normal(0.4 * budget.cpu, 0.1 * budget.cpu, n))
        cpu[rng.integers(n)] = 3 * budget.cpu
        ram = budget.ram * 0.6 + rng.normal(0, budget.ram * 0.001, n).cumsum()
        window.extend(key, np.arange(n), cpu, ram)
    sizes = {b.name: len(service_plot_svg(window, b).encode()) for b in (*budgets.services, budgets.total)}
    # Each of a service's 4 tests (TOTAL's 2) carries its plot, base64-encoded in a self-contained report.
    embedded = sum(4 * -(-s // 3) * 4 for name, s in sizes.items() if name != "TOTAL") + 2 * -(-sizes["TOTAL"] // 3) * 4
    print(f"plots: {sum(sizes.values())} bytes of SVG, largest {max(sizes.values())}; "
          f"{embedded} bytes embedded in a self-contained report")
    assert max(sizes.values()) < 60_000
    assert embedded < 4_000_000  # leaves a megabyte of the 5 MB for pytest-html's own page and the logs


def test_pytest_html_report_carries_the_table_and_each_tests_plot(pytester: pytest.Pytester) -> None:
    """The pytest-html hooks in a real self-contained report: the summary table, and every budget test of a
    service (a test recording its verdict's k2_service and k2_criterion) with its plot."""
    pytester.makeini("[pytest]\npython_classes = redpanda\n")
    pytester.makeconftest(f"""
        from pytest_k2budget.budgets import parse_budgets
        from pytest_k2budget.criteria import judge_all
        from pytest_k2budget.reports.html import HtmlHooks
        from pytest_k2budget.window import Window

        class Run:
            budgets = parse_budgets({STACK!r})
            window = Window(source="replay", interval=300.0)
            key = window.add_container("c", "k2-redpanda-1", "redpanda").key
            for i in range(12):
                window.add_round({T0} + 300 * i, [(key, 2.5, 2**30)])
            verdicts = judge_all(window, budgets)

            def budget(self, service):
                return self.budgets.service(service)

        def pytest_configure(config):
            config.pluginmanager.register(HtmlHooks(Run()), "k2budget-html-test")
    """)
    pytester.makepyfile(test_stack="""
        class redpanda:
            def test_cpu_p99(self, record_property):
                record_property("k2_service", "redpanda")
                record_property("k2_criterion", "cpu_p99")
                assert False, "redpanda: CPU p99 2.50 cores > budget 2.00"

            def test_ram_max(self, record_property):
                record_property("k2_service", "redpanda")
                record_property("k2_criterion", "ram_max")

        def test_unrelated():
            pass
    """)
    result = pytester.runpytest("--html=report.html", "--self-contained-html")
    result.assert_outcomes(passed=2, failed=1)
    report = (pytester.path / "report.html").read_text(encoding="utf-8")
    assert "Resource budgets: k2 platform v2" in report
    assert "<code>redpanda</code> (cpu_p99 2.50 &gt; 2.00 cores)" in report
    assert report.count("data:image/svg+xml;base64,") == 2
    assert not (pytester.path / "assets").exists()
