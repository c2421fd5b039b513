"""Sizes and durations: parsing the way Docker reads them, printing the way docker stats prints them."""

from __future__ import annotations

import re

# Docker's memory-limit convention (`docker run --memory`, compose `mem_limit`): K/M/G/T are binary,
# with or without a trailing B, so "256MB" is 256 MiB. The IEC spellings mean the same.
_BINARY = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgtp]?)(i?b)?\s*$", re.IGNORECASE)

# docker stats output: current releases print IEC units, older releases printed decimal kB/MB/GB.
_STATS_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_STATS_UNITS = {
    "b": 1,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40, "pib": 1 << 50,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "pb": 10**15,
}

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|[smhdw])", re.IGNORECASE)
_DURATION_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

SIZE_EXPECTED = "a size such as 256MB, 4GB, 21.75GB or 512MiB (K/M/G/T are binary, as in docker --memory)"
DURATION_EXPECTED = "a duration such as 90s, 15m, 24h, 1h30m or 2d (a bare number is seconds)"


def parse_size(text: object) -> int:
    """Bytes from a budget size; raises ValueError naming what was expected."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ValueError(SIZE_EXPECTED)
    if isinstance(text, (int, float)):
        value = float(text)
        unit = 1
    else:
        match = _SIZE_RE.match(text)
        if match is None:
            raise ValueError(SIZE_EXPECTED)
        suffix = match.group(3) or ""
        if suffix.lower() == "ib" and not match.group(2):
            raise ValueError(SIZE_EXPECTED)
        value = float(match.group(1))
        unit = _BINARY[match.group(2).lower()]
    size = round(value * unit)
    if size < 1:
        raise ValueError(SIZE_EXPECTED + ", of at least one byte")
    return size


def parse_stats_size(text: str) -> int:
    """Bytes from the left side of docker stats' MemUsage column (`12.5MiB`, or `12.5MB` from old clients)."""
    match = _STATS_RE.match(text)
    if match is None:
        raise ValueError(f"a memory figure such as 12.5MiB, got {text!r}")
    unit = match.group(2).lower() or "b"
    if unit not in _STATS_UNITS:
        raise ValueError(f"a memory figure such as 12.5MiB, got {text!r}")
    return round(float(match.group(1)) * _STATS_UNITS[unit])


def parse_duration(text: object) -> float:
    """Seconds from `90s`, `15m`, `24h`, `1h30m`, `2d` or a bare number of seconds."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ValueError(DURATION_EXPECTED)
    if isinstance(text, (int, float)):
        seconds = float(text)
    else:
        stripped = text.strip()
        try:
            seconds = float(stripped)
        except ValueError:
            parts = _DURATION_PART.findall(stripped)
            if not parts or _DURATION_PART.sub("", stripped).strip():
                raise ValueError(DURATION_EXPECTED) from None
            seconds = sum(float(n) * _DURATION_SECONDS[u.lower()] for n, u in parts)
    if seconds <= 0:
        raise ValueError(DURATION_EXPECTED + ", > 0")
    return seconds


def format_size(n_bytes: float) -> str:
    """IEC units with two decimals, as docker stats prints memory."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.2f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_budget_size(n_bytes: int) -> str:
    """A budget as the step doc writes it (`256MB`, `4GB`, `21.75GB`): Docker's binary convention."""
    for unit, factor in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n_bytes >= factor:
            return f"{n_bytes / factor:.2f}".rstrip("0").rstrip(".") + unit
    return f"{n_bytes}B"


def format_duration(seconds: float) -> str:
    """`24h`, `1h30m`, `2m5s`, `7d`: exact down to whole seconds."""
    remaining = round(seconds)
    if remaining == 0:
        return f"{seconds:.3g}s"
    parts = []
    # Burn-ins are spoken of in hours ("24h"); days only from two on.
    units = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)) if remaining >= 172800 else (
        ("h", 3600), ("m", 60), ("s", 1))
    for unit, size in units:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def format_cores(cores: float) -> str:
    return f"{cores:.2f}"
