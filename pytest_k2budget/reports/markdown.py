"""The step doc's Results section: written to a file, or rewritten in place inside the step doc itself."""

from __future__ import annotations

import os
import re
import secrets
import stat
from pathlib import Path

from ..budgets import Budgets
from ..errors import K2InputError
from ..window import TOTAL, Window
from .table import (
    SUMMARY_LABELS,
    Row,
    RowStatus,
    Verdicts,
    build_rows,
    columns,
    header_percentile,
    partial,
    summary_lines,
)

HEADING = "## Results"
SYMBOLS: dict[RowStatus, str] = {"passed": "✅", "failed": "❌", "no data": "⬜"}


# Matched against a line without its line ending.
_HEADING_RE = re.compile(r"^ {0,3}##[ \t]+Results\b", re.IGNORECASE)
_END_RE = re.compile(r"^ {0,3}(?:#{1,2}(?:[ \t]|$)|(?:-[ \t]*){3,}$|(?:\*[ \t]*){3,}$|(?:_[ \t]*){3,}$)")
_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_FIELD_RE = re.compile(r"^ {0,3}\*\*(?P<label>[^*]+?)(?::\*\*|\*\*:)")


def _name(service: str) -> str:
    return "**Total**" if service == TOTAL else f"`{service}`"


def _table_row(row: Row, percentile: float) -> str:
    figures = [row.cpu_budget(), row.cpu_actual(percentile), row.ram_budget(), row.ram_actual()]
    if row.is_total:
        figures = [f"**{f}**" for f in figures]
    return "| " + " | ".join([_name(row.service), *figures, SYMBOLS[row.status]]) + " |"


def results_section(budgets: Budgets, window: Window, verdicts: Verdicts, run_date: str) -> str:
    """The Results section, heading included, in the step doc's layout; ends with a newline."""
    rows = build_rows(budgets, verdicts)
    percentile = header_percentile(rows)
    head = columns(rows)
    lines = [HEADING, "", f"Run date: {run_date}", ""]
    marker = partial(window)
    if marker:
        lines += [f"**{marker}**", ""]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join("-" * (len(h) + 2) for h in head) + "|")
    lines += [_table_row(row, percentile) for row in rows]
    for label, text in summary_lines(budgets, window, rows, _name):
        lines += ["", f"**{label}:** {text}"]
    return "\n".join(lines) + "\n"


def write_results(path: Path, section: str) -> None:
    """`--k2-results-md`: the section alone, written atomically."""
    _write_atomic(path, section)


def check_doc(path: Path) -> tuple[list[str], int, int]:
    """The doc's lines and its Results section's bounds; K2InputError when there is none to update.

    The plugin calls it before a run too, so a 24 h burn-in does not end in a doc it cannot update.
    """
    try:
        with path.resolve().open(encoding="utf-8", newline="") as f:
            text = f.read()
    except FileNotFoundError:
        raise K2InputError("--k2-update-doc: step doc not found", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise K2InputError(f"--k2-update-doc: cannot read the step doc: {exc}", path=str(path)) from None
    lines = text.splitlines(keepends=True)
    start, end = _section_bounds(lines)
    if start is None:
        raise K2InputError(f"--k2-update-doc: no '{HEADING}' heading (outside code blocks) to update",
                           path=str(path))
    return lines, start, end


def update_doc(path: Path, section: str) -> None:
    """Rewrite the Results section of the step doc at `path` in place; every other byte stays.

    The section runs from the first `## Results` heading (outside code fences; `## Results (to fill in)` matches
    too) to the next `---` rule or `#`/`##` heading, or the end of the file. The doc's heading line is kept as
    written, the body becomes `section`'s body, and bold fields the plugin does not write (such as
    `**Tuning applied:** ...`, with any lines continuing them) are carried over after it. Line endings follow
    the doc's. A symlink is followed and its target rewritten. The write is atomic: a temporary file in the
    same directory, then os.replace, so a crash leaves either the old doc or the new one.
    """
    target = path.resolve()
    lines, start, end = check_doc(path)
    heading = lines[start]
    newline = "\r\n" if heading.endswith("\r\n") else "\n"
    if not heading.endswith(("\n", "\r")):
        heading += newline

    body = section.split("\n", 1)[1] if section.startswith(HEADING) else section
    parts = [body.strip("\n")]
    kept = _hand_fields(lines[start + 1 : end])
    if kept:
        parts.append("".join(kept).rstrip("\r\n"))
    # A blank line after the heading, and before the rule or heading that ends the section.
    new = "\n" + "\n\n".join(parts) + "\n" + ("\n" if end < len(lines) else "")
    if newline != "\n":
        new = new.replace("\n", newline)
    _write_atomic(target, "".join(lines[:start]) + heading + new + "".join(lines[end:]))


def _section_bounds(lines: list[str]) -> tuple[int | None, int]:
    fence: str | None = None
    start: int | None = None
    for index, raw in enumerate(lines):
        line = raw.rstrip("\r\n")
        match = _FENCE_RE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
                continue
            if marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
                continue
        if fence is not None:
            continue
        if start is None:
            if _HEADING_RE.match(line):
                start = index
        elif _END_RE.match(line):
            return start, index
    return start, len(lines)


def _hand_fields(lines: list[str]) -> list[str]:
    """Lines of `**Label:**` fields the plugin does not write, each with the non-blank lines continuing it."""
    kept: list[str] = []
    keeping = False
    for line in lines:
        field = _FIELD_RE.match(line.rstrip("\r\n"))
        if field:
            # Fields the reports write are replaced; any other (`**Tuning applied:**`) was filled in by hand.
            keeping = field.group("label").strip() not in SUMMARY_LABELS
        elif not line.strip() or line.lstrip().startswith("|"):
            keeping = False
        if keeping:
            kept.append(line.rstrip("\r\n") + "\n")
    return kept


def _write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same directory and os.replace it over `path`.

    The temporary file is created with mode 0666 so the umask applies as to any new file; an existing file
    keeps its permissions.
    """
    temp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else None
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise K2InputError(f"cannot write: {exc}", path=str(path)) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        if mode is not None:
            os.chmod(temp, mode)
        os.replace(temp, path)
    except OSError as exc:
        temp.unlink(missing_ok=True)
        raise K2InputError(f"cannot write: {exc}", path=str(path)) from None
