"""The plugin's surface, through pytester: collection, node ids, exit codes, errors, fixture, reports."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

BUDGETS = """\
version: 1
stack:
  name: demo stack
  compose_project: k2
services:
  web: {cpu: 1.0, ram: 100MB}
  db: {cpu: 2.0, ram: 1GB}
"""


def csv_rounds(rows: list[dict[str, tuple[str, str]]]) -> str:
    """The step doc's loop output: per round, name -> (CPU%, MemUsage left side)."""
    return "".join(f"{name},{cpu},{mem} / 8GiB,1.00%\n" for row in rows for name, (cpu, mem) in row.items())


WITHIN = csv_rounds([{"k2-web-1": ("50.00%", "40MiB"), "k2-db-1": ("120.00%", "512MiB")}] * 12)
OVER = csv_rounds(
    [{"k2-web-1": ("50.00%", "40MiB"), "k2-db-1": ("120.00%", "512MiB")}] * 10
    + [{"k2-web-1": ("250.00%", "140MiB"), "k2-db-1": ("120.00%", "512MiB")}] * 2
)


@pytest.fixture
def stack(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makefile(".yml", budgets=BUDGETS)
    pytester.makefile(".csv", within=WITHIN, over=OVER)
    return pytester


def test_inert_without_a_budget_run(stack: pytest.Pytester) -> None:
    stack.makepyfile(test_app="def test_ok():\n    pass\n")
    result = stack.runpytest("-v")
    result.assert_outcomes(passed=1)
    after_header = result.stdout.str().split("collected", 1)[1]
    assert "budgets.yml" not in after_header
    assert "k2budget: " not in after_header and "K2BudgetWarning" not in after_header
    assert not (stack.path / ".k2budget").exists()


def test_one_test_per_service_per_criterion_and_stack_totals(stack: pytest.Pytester) -> None:
    result = stack.runpytest("--k2-replay=within.csv", "--k2-replay-interval=5s", "-v", "-rs")
    result.stdout.fnmatch_lines([
        "budgets.yml::web::cpu_p99 PASSED*",
        "budgets.yml::web::cpu_spike PASSED*",
        "budgets.yml::web::ram_max PASSED*",
        "budgets.yml::web::restarts SKIPPED*",
        "budgets.yml::db::cpu_p99 PASSED*",
        "budgets.yml::db::cpu_spike PASSED*",
        "budgets.yml::db::ram_max PASSED*",
        "budgets.yml::db::restarts SKIPPED*",
        "budgets.yml::TOTAL::cpu_p99 PASSED*",
        "budgets.yml::TOTAL::ram_max PASSED*",
    ])
    result.stdout.fnmatch_lines(["*docker stats CSV records no restarts or OOM kills*"])
    assert result.ret == 0
    result.assert_outcomes(passed=8, skipped=2)
    result.stdout.fnmatch_lines(["*k2budget: demo stack*"])


def test_over_budget_fails_with_evidence_and_exit_code_1(stack: pytest.Pytester) -> None:
    result = stack.runpytest("--k2-replay=over.csv", "--k2-replay-interval=5m")
    assert result.ret == 1
    # web breaks three criteria, and web's 2.50 cores plus db's 1.20 break the 3.00-core total.
    result.assert_outcomes(passed=4, failed=4, skipped=2)
    out = result.stdout.str()
    assert "Traceback" not in out
    result.stdout.fnmatch_lines([
        "*web: CPU p99 2.50 cores > budget 1.00 (+150.0%); 2 of 12 samples above budget; worst 2.50 at *Z*",
        "*web: CPU max 2.50 cores >= spike limit 2.00 (2x budget 1.00)*",
        "*web: RAM max 140.00MiB > budget 100MB (+40.0%)*",
    ])


def test_node_ids_select_a_service_or_a_criterion(stack: pytest.Pytester) -> None:
    by_service = stack.runpytest("budgets.yml::db", "--k2-replay=within.csv", "-v")
    by_service.assert_outcomes(passed=3, skipped=1)
    assert "budgets.yml::web" not in by_service.stdout.str()
    by_criterion = stack.runpytest("--k2-replay=over.csv", "-k", "ram_max", "-v")
    by_criterion.assert_outcomes(passed=2, failed=1)
    by_criterion.stdout.fnmatch_lines(["budgets.yml::TOTAL::ram_max PASSED*"])


def test_budgets_are_collected_when_the_command_line_names_other_tests(stack: pytest.Pytester) -> None:
    stack.makepyfile(test_app="def test_ok():\n    pass\n")
    result = stack.runpytest("test_app.py", "--k2-replay=within.csv", "-v")
    result.assert_outcomes(passed=9, skipped=2)
    result.stdout.fnmatch_lines(["test_app.py::test_ok PASSED*"])
    once = stack.runpytest("--k2-replay=within.csv", "--co", "-q")
    assert once.stdout.str().count("budgets.yml::web::cpu_p99") == 1


def test_budgets_path_from_option_and_ini(stack: pytest.Pytester) -> None:
    (stack.path / "conf").mkdir()
    (stack.path / "budgets.yml").rename(stack.path / "conf" / "stack.yml")
    result = stack.runpytest("--k2-replay=within.csv", "--k2-budgets=conf/stack.yml", "-v")
    result.stdout.fnmatch_lines(["conf/stack.yml::web::cpu_p99 PASSED*"])
    stack.makeini("[pytest]\nk2_budgets = conf/stack.yml\nk2_replay = within.csv\nk2_replay_interval = 5s\n")
    from_ini = stack.runpytest("-v")
    from_ini.assert_outcomes(passed=8, skipped=2)


def test_junit_xml_carries_measured_budget_and_headroom(stack: pytest.Pytester) -> None:
    stack.runpytest("--k2-replay=over.csv", "--junitxml=out.xml")
    tree = ET.parse(stack.path / "out.xml")
    cases = {c.get("name"): c for c in tree.iter("testcase") if c.get("classname", "").endswith("web")}
    props = {p.get("name"): p.get("value") for p in cases["ram_max"].iter("property")}
    assert props["k2_measured"] == str(140 * 2**20) and props["k2_budget"] == str(100 * 2**20)
    assert props["k2_headroom"] == "-0.4000" and props["k2_status"] == "failed"
    failing = {p.get("name"): p.get("value") for p in cases["cpu_p99"].iter("property")}
    assert (failing["k2_measured"], failing["k2_budget"], failing["k2_headroom"]) == ("2.5", "1", "-1.5000")
    assert (failing["k2_service"], failing["k2_criterion"]) == ("web", "cpu_p99")
    db_cases = [c for c in tree.iter("testcase") if c.get("classname", "").endswith("db")]
    db_props = {p.get("name"): p.get("value") for p in db_cases[0].iter("property")}
    assert db_props["k2_status"] == "passed" and db_props["k2_measured"] == "1.2"


def test_fixture_gives_series_and_events_for_criteria_of_ones_own(stack: pytest.Pytester) -> None:
    stack.makepyfile(test_offload="""
        import numpy as np

        def test_db_never_idles(k2_burn_in):
            series = k2_burn_in.series("db")
            assert isinstance(series.cpu, np.ndarray) and series.cpu.size == 12
            assert series.times[1] - series.times[0] == 300
            assert k2_burn_in.events("db") == []
            assert k2_burn_in.budget("db").cpu == 2.0
            assert np.all(series.cpu > 1.0)

        def test_web_stays_below_two_cores(k2_burn_in):
            assert k2_burn_in.series("web").cpu.max() < 2.0
    """)
    result = stack.runpytest("test_offload.py", "--k2-replay=over.csv", "-v")
    result.stdout.fnmatch_lines(["test_offload.py::test_db_never_idles PASSED*",
                                 "test_offload.py::test_web_stays_below_two_cores FAILED*"])


def test_fixture_without_a_budget_run_skips_with_the_reason(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(k2_burn_in):\n    pass\n")
    result = pytester.runpytest("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no budget run: pass --k2-burn-in*"])


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--k2-replay=missing.csv"], "missing.csv: replay file not found"),
        (["--k2-replay=within.csv", "--k2-replay-interval=soon"], "--k2-replay-interval: expected a duration"),
        (["--k2-burn-in=forever"], "--k2-burn-in: expected a duration such as 90s"),
        (["--k2-replay=within.csv", "--k2-burn-in=1m"], "exclude each other"),
        (["--k2-source=influx"], "--k2-source: expected docker or prometheus"),
        (["--k2-source=prometheus", "--k2-window=1h"], "needs --k2-prometheus-url"),
        (["--k2-source=prometheus", "--k2-prometheus-url=http://127.0.0.1:1", "--k2-window-start=yesterday"],
         "--k2-window-start: expected an RFC 3339 time"),
        (["--k2-replay=within.csv", "--k2-budgets=nope.yml"], "nope.yml: budgets file not found"),
        (["--k2-source=prometheus", "--k2-prometheus-url=http://127.0.0.1:abc/", "--k2-window=1h"],
         "--k2-prometheus-url: expected an http(s) URL"),
        (["--k2-source=prometheus", "--k2-prometheus-url=http://u:secret@[::1", "--k2-window=1h"],
         "got a URL that does not parse: 'http://***@[::1'"),
        (["--k2-source=prometheus", "--k2-prometheus-url=admin:s3cretpw@prom.example:9090", "--k2-window=1h"],
         "got '***@prom.example:9090'"),
        (["--k2-source=prometheus", "--k2-prometheus-url=http://127.0.0.1:9/pro metheus", "--k2-window=1h"],
         "cannot reach Prometheus at http://127.0.0.1:9/pro metheus"),
        (["--k2-replay=within.csv", "--k2-update-doc=nodoc.md"], "nodoc.md: --k2-update-doc: step doc not found"),
        (["--k2-replay=within.csv", "--k2-update-doc=budgets.yml"], "budgets.yml: --k2-update-doc: no '## Results'"),
    ],
)
def test_bad_options_are_one_line_usage_errors(stack: pytest.Pytester, args: list[str], fragment: str) -> None:
    result = stack.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert fragment in err
    assert "Traceback" not in err + result.stdout.str()
    assert [line for line in err.splitlines() if line.strip()] == [line for line in err.splitlines()
                                                                  if line.startswith("ERROR: ")]


@pytest.mark.parametrize(
    ("budgets", "fragment"),
    [
        ("version: 1\nservices:\n  web: {cpu: 1, rma: 1GB}\n", "budgets.yml:3: service 'web': key 'rma': unknown key"),
        ("version: 1\nservices:\n  web: {cpu: 1, ram: 4 GBs}\n", "budgets.yml:3: service 'web': key 'ram': expected"),
        ("version: 1\nservices: {web: {cpu: 1, ram: 1GB}\n", "budgets.yml:2: YAML syntax error"),
        ("", "budgets.yml: empty budgets file"),
    ],
)
def test_bad_budgets_are_one_line_usage_errors(stack: pytest.Pytester, budgets: str, fragment: str) -> None:
    stack.makefile(".yml", budgets=budgets)
    result = stack.runpytest("--k2-replay=within.csv")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert fragment in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_skipped_total_points_at_the_budgets_file(stack: pytest.Pytester) -> None:
    # One round of a recording, without a CPU figure: every CPU test, TOTAL's too, has nothing to judge.
    stack.makefile(".jsonl", one='{"k2budget_recording": 1, "interval": 1}\n'
                   '{"c": 0, "id": "a", "name": "k2-web-1", "service": "web"}\n{"t": 1, "s": [[0, null, 100]]}\n')
    result = stack.runpytest("--k2-replay=one.jsonl", "-rs")
    result.stdout.fnmatch_lines(["SKIPPED [[]1[]] budgets.yml:5: TOTAL: no CPU figure*"])
    assert "INTERNALERROR" not in result.stdout.str()


def test_malformed_replay_line_is_a_usage_error_naming_the_line(stack: pytest.Pytester) -> None:
    stack.makefile(".csv", broken="k2-web-1,50%,1MiB / 1GiB,1%\nk2-web-1,50,1MiB / 1GiB,1%\n"
                                  "k2-web-1,5%,1MiB / 1GiB,1%\n")
    result = stack.runpytest("--k2-replay=broken.csv")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "broken.csv:2: expected CPU as a percentage" in result.stderr.str()


def test_warnings_name_total_mismatch_and_unbudgeted_containers(stack: pytest.Pytester) -> None:
    stack.makefile(".yml", budgets=BUDGETS.replace("services:", "  total: {cpu: 4, ram: 1GB}\nservices:"))
    stack.makefile(".csv", extra=WITHIN + "k2-cache-1,10.00%,10MiB / 8GiB,1.00%\n")
    result = stack.runpytest("--k2-replay=extra.csv", "-v")
    out = result.stdout.str()
    assert "stack.total.cpu 4 differs from the sum of the services' CPU budgets 3" in out
    assert "containers of the stack without a budget (counted in TOTAL only): cache (k2-cache-1)" in out
    result.stdout.fnmatch_lines(["*TOTAL::cpu_p99 PASSED*"])


def test_markdown_results_and_in_place_doc_update(stack: pytest.Pytester) -> None:
    original = (ROOT / "tests" / "data" / "step-doc.md").read_text(encoding="utf-8")
    (stack.path / "step.md").write_text(original, encoding="utf-8")
    result = stack.runpytest("--k2-replay=over.csv", "--k2-results-md=out/results.md", "--k2-update-doc=step.md")
    assert result.ret == 1
    md = (stack.path / "out" / "results.md").read_text(encoding="utf-8")
    assert "| Service | CPU Budget | CPU Actual (p99) | RAM Budget | RAM Actual (max) | Status |" in md
    assert "| `web` |" in md and "❌" in md and "**Total**" in md
    assert "**Any services over budget:**" in md and "web" in md.split("**Any services over budget:**")[1]
    updated = (stack.path / "step.md").read_text(encoding="utf-8")
    before, _, after = original.partition("## Results")
    assert updated.startswith(before) and updated != original
    assert updated.endswith(after[after.index("\n---"):])
    assert "Run date: --" not in updated


def test_html_report_has_the_results_table_and_plots(stack: pytest.Pytester) -> None:
    result = stack.runpytest("--k2-replay=over.csv", "--html=report.html", "--self-contained-html")
    assert result.ret == 1
    html = (stack.path / "report.html").read_text(encoding="utf-8")
    assert "CPU Actual (p99)" in html
    assert '<tr class="k2-failed"><td><code>web</code></td>' in html
    assert '<tr class="k2-passed"><td><code>db</code></td>' in html
    assert html.count("data:image/svg+xml;base64,") == 10  # each budget test carries its service's plot
    plain = stack.runpytest("--k2-replay=over.csv")
    assert plain.ret == 1 and not (stack.path / "assets").exists()


def test_xdist_judges_once_and_reports_every_verdict(stack: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    result = stack.runpytest_subprocess("--k2-replay=over.csv", "-n", "2", "--k2-results-md=r.md")
    assert result.ret == 1
    result.assert_outcomes(passed=4, failed=4, skipped=2)
    md = (stack.path / "r.md").read_text(encoding="utf-8")
    assert "| `db` |" in md and "✅" in md and "❌" in md
    assert "recording:" not in result.stdout.str()  # a replay records nothing; the workers' copy is gone


def test_bundled_example_is_the_readme_main_job(pytester: pytest.Pytester) -> None:
    for name in ("budgets.yml", "burn-in-24h.csv", "pytest.ini"):
        shutil.copy(ROOT / "examples" / name, pytester.path / name)
    result = pytester.runpytest("--k2-replay=burn-in-24h.csv", "--k2-results-md=results.md", "--html=report.html",
                                "--self-contained-html")
    assert result.ret == 0
    result.assert_outcomes(passed=41, skipped=13)
    size = (pytester.path / "report.html").stat().st_size
    assert size < 5 * 2**20


def test_readme_fixture_example_runs_on_the_bundled_example(pytester: pytest.Pytester) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Criteria of your own", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    for name in ("budgets.yml", "burn-in-24h.csv", "pytest.ini"):
        shutil.copy(ROOT / "examples" / name, pytester.path / name)
    pytester.makepyfile(test_own=code)
    result = pytester.runpytest("test_own.py", "--k2-replay=burn-in-24h.csv", "-v", "-rs")
    result.stdout.fnmatch_lines([
        "test_own.py::test_spark_offload_completes_within_spike_tolerance PASSED*",
        "test_own.py::test_no_oom_kill_anywhere SKIPPED*",
    ])
