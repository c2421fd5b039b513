from __future__ import annotations

import pytest

from pytest_k2budget.units import (
    format_budget_size,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
    parse_stats_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("256MB", 256 * 2**20),  # docker --memory: MB is binary
        ("256M", 256 * 2**20),
        ("256MiB", 256 * 2**20),
        ("4GB", 4 * 2**30),
        ("21.75GB", int(21.75 * 2**30)),
        ("512k", 512 * 1024),
        ("1TB", 2**40),
        ("1048576", 2**20),
        (1048576, 2**20),
        ("0.5g", 2**29),
    ],
)
def test_sizes_follow_dockers_memory_limit_convention(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["4 GBs", "GB", "-1GB", "0", "0MB", "1XB", "", "1.2.3MB", "MiB4", True])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("12.5MiB", 12.5 * 2**20), ("1.2GiB", 1.2 * 2**30), ("512KiB", 512 * 1024), ("12.5MB", 12.5e6),
     ("100kB", 100e3), ("0B", 0), ("3.4GB", 3.4e9)],
)
def test_docker_stats_sizes_in_both_conventions(text: str, expected: float) -> None:
    assert parse_stats_size(text) == round(expected)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("24h", 86400), ("1h30m", 5400), ("2d", 172800), ("300", 300), (2.5, 2.5),
     ("500ms", 0.5)],
)
def test_durations(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "24x", "1h 30", "-5m", "0s", "soon"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_formatting_round_trips_what_users_read() -> None:
    assert format_size(268435456) == "256.00MiB"
    assert format_size(512) == "512B"
    assert format_budget_size(parse_size("21.75GB")) == "21.75GB"
    assert format_budget_size(parse_size("256MB")) == "256MB"
    assert format_duration(5400) == "1h30m"
    assert format_duration(86400) == "24h"
    assert format_duration(7 * 86400) == "7d"
