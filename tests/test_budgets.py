from __future__ import annotations

from pathlib import Path

import pytest

from pytest_k2budget.budgets import load_budgets, parse_budgets
from pytest_k2budget.errors import K2InputError

ROOT = Path(__file__).resolve().parent.parent

GOOD = """\
version: 1
stack:
  name: k2 platform v2
  compose_project: k2
defaults:
  cpu_percentile: 95
  spike_factor: 1.5
services:
  feed-handler-binance: {cpu: 0.5, ram: 256MB, notes: 12 symbols}
  redpanda: {cpu: 2.0, ram: 4GB, max_restarts: 1, spike_factor: 3}
"""


def test_the_documented_example_parses_with_defaults_and_overrides() -> None:
    budgets = parse_budgets(GOOD, "b.yml")
    binance, redpanda = budgets.services
    assert (binance.cpu, binance.ram, binance.notes, binance.line) == (0.5, 256 * 2**20, "12 symbols", 9)
    assert (binance.cpu_percentile, binance.spike_factor, binance.max_restarts) == (95, 1.5, 0)
    assert (redpanda.spike_factor, redpanda.max_restarts, redpanda.cpu_percentile) == (3, 1, 95)
    assert budgets.compose_project == "k2"
    # No declared total: the sum of the services, and nothing to warn about.
    assert (budgets.total_cpu, budgets.total_ram, budgets.warnings) == (2.5, 256 * 2**20 + 4 * 2**30, ())


def test_shipped_budgets_are_the_step_docs_table_and_warn_about_its_totals() -> None:
    budgets = load_budgets(ROOT / "budgets.yml")
    assert len(budgets.services) == 13
    assert budgets.service("clickhouse").cpu == 4.0
    assert budgets.service("minio").ram == 2**30
    assert (budgets.total_cpu, budgets.total_ram) == (15.5, int(21.75 * 2**30))
    cpu_warning, ram_warning = budgets.warnings
    assert "15.5" in cpu_warning and "13" in cpu_warning
    assert "21.75GB" in ram_warning and "20.5GB" in ram_warning


BAD = [
    # (text, fragments every one of which the one-line error names)
    ("", ["b.yml", "empty budgets file"]),
    ("version: 1\nservices: {a: {cpu: 1, rma: 1GB}}\n", ["b.yml:2", "'a'", "'rma'", "unknown key"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: 4 GBs}\n", ["b.yml:3", "'a'", "'ram'", "256MB"]),
    ("version: 1\nservices:\n  a: {cpu: 0, ram: 1GB}\n", ["b.yml:3", "'a'", "'cpu'", "CPU cores > 0"]),
    ("version: 1\nservices:\n  a: {cpu: -2, ram: 1GB}\n", ["b.yml:3", "'cpu'", "> 0"]),
    ("version: 1\nservices:\n  a: {cpu: many, ram: 1GB}\n", ["b.yml:3", "'cpu'", "'many'"]),
    ("version: 1\nservices:\n  a: {ram: 1GB}\n", ["b.yml:3", "'a'", "missing key 'cpu'"]),
    ("version: 1\nservices:\n  a: {cpu: 1}\n", ["b.yml:3", "'a'", "missing key 'ram'"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: 1GB, cpu_percentile: 0}\n",
     ["b.yml:3", "'cpu_percentile'", "(0, 100]"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: 1GB, cpu_percentile: 100.5}\n", ["'cpu_percentile'", "(0, 100]"]),
    ("version: 1\ndefaults: {cpu_percentile: 101}\nservices: {a: {cpu: 1, ram: 1GB}}\n",
     ["b.yml:2", "'cpu_percentile'"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: 1GB, max_restarts: -1}\n", ["'max_restarts'", "whole number"]),
    ("version: 1\nservices:\n  a: [1, 2]\n", ["b.yml:3", "'a'", "expected a mapping, got a list"]),
    ("version: 1\nservices:\n  a:\n", ["b.yml:3", "'a'", "expected a mapping, got nothing"]),
    ("version: 1\nservices: {a: {cpu: 1, ram: 1GB}\n", ["b.yml:2", "YAML syntax error", "flow mapping"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: 1GB}\n   b: {cpu: 1, ram: 1GB}\n", ["b.yml:4", "YAML syntax error"]),
    ("version: 2\nservices: {a: {cpu: 1, ram: 1GB}}\n", ["b.yml:1", "'version'", "expected 1"]),
    ("services: {a: {cpu: 1, ram: 1GB}}\n", ["b.yml", "missing key 'version'"]),
    ("version: 1\n", ["b.yml", "missing key 'services'"]),
    ("version: 1\nservices: {}\n", ["b.yml:2", "at least one service"]),
    ("version: 1\nstak: {}\nservices: {a: {cpu: 1, ram: 1GB}}\n", ["b.yml:2", "'stak'", "unknown key"]),
    ("version: 1\nstack: {total: {cpu: 1, ram: 1 gigabyte}}\nservices: {a: {cpu: 1, ram: 1GB}}\n",
     ["b.yml:2", "'ram'", "a size"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: 1GB}\n  a: {cpu: 2, ram: 1GB}\n", ["b.yml:4", "duplicate key 'a'"]),
    ("version: 1\nservices:\n  TOTAL: {cpu: 1, ram: 1GB}\n", ["b.yml:3", "reserved"]),
    ("- just\n- a list\n", ["b.yml:1", "expected a mapping"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: }\n", ["b.yml:3", "'ram'", "got nothing"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: [1GB]}\n", ["b.yml:3", "'ram'", "got a list"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: 2020-01-01}\n", ["b.yml:3", "'ram'", "a size"]),
    ("version: 1\nservices:\n  a: {cpu: 1, ram: 0.1B}\n", ["b.yml:3", "'ram'", "at least one byte"]),
    ("version: 1\nstack: {total: {ram: }}\nservices: {a: {cpu: 1, ram: 1GB}}\n", ["b.yml:2", "'ram'"]),
    ("version: 1\nservices:\n  'db::x': {cpu: 1, ram: 1GB}\n", ["b.yml:3", "'db::x'", "service name"]),
    ("version: 1\nservices:\n  '': {cpu: 1, ram: 1GB}\n", ["b.yml:3", "service name"]),
]


@pytest.mark.parametrize(("text", "fragments"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_budgets_name_file_line_service_key_and_expectation(text: str, fragments: list[str]) -> None:
    with pytest.raises(K2InputError) as excinfo:
        parse_budgets(text, "b.yml")
    message = str(excinfo.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_total_is_judged_at_the_defaults_percentile_with_its_own_line() -> None:
    budgets = parse_budgets(
        "version: 1\ndefaults: {cpu_percentile: 95}\nservices:\n  a: {cpu: 1, ram: 1GB, cpu_percentile: 50}\n"
    )
    assert budgets.total.cpu_percentile == 95 and budgets.total.line == 3
    declared = parse_budgets("version: 1\nstack:\n  total: {cpu: 1}\nservices: {a: {cpu: 1, ram: 1GB}}\n")
    assert declared.total.cpu_percentile == 99 and declared.total.line == 3


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(K2InputError, match="budgets file not found"):
        load_budgets(tmp_path / "nope.yml")


def test_declared_total_that_differs_from_the_sum_warns_with_both_numbers() -> None:
    budgets = parse_budgets(
        "version: 1\nstack:\n  total: {cpu: 4, ram: 2GB}\nservices: {a: {cpu: 1, ram: 1GB}, b: {cpu: 1, ram: 1GB}}\n"
    )
    assert budgets.total_cpu == 4 and budgets.total_ram == 2 * 2**30
    assert len(budgets.warnings) == 1
    assert "stack.total.cpu 4 differs" in budgets.warnings[0] and "budgets 2" in budgets.warnings[0]


def test_yaml_merge_keys_share_settings_between_services() -> None:
    budgets = parse_budgets(
        "version: 1\nservices:\n  a: &small {cpu: 0.5, ram: 256MB}\n  b: {<<: *small, cpu: 1}\n"
    )
    assert (budgets.service("b").cpu, budgets.service("b").ram) == (1.0, 256 * 2**20)
