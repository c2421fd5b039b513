"""The live line: in place on a terminal, a line every few minutes in a CI log."""

from __future__ import annotations

from pytest_k2budget.progress import Progress, Status


def status(elapsed: float, nearest: str | None = None) -> Status:
    return Status(elapsed, 86400, 15, int(elapsed) * 15, nearest)


def test_line_tells_elapsed_remaining_containers_samples_and_nearest() -> None:
    assert status(5400, "nearest: clickhouse RAM peak 91% of budget").line() == (
        "k2budget burn-in 1h30m / 24h (22h30m left), 15 containers, 81000 samples, "
        "nearest: clickhouse RAM peak 91% of budget")


def test_tty_rewrites_the_line_in_place_and_clears_a_longer_tail() -> None:
    out: list[str] = []
    progress = Progress(out.append, tty=True)
    progress.update(status(1, "nearest: a-long-service-name RAM peak 10% of budget"))
    progress.update(status(2))
    progress.finish(status(3), "done")
    assert all(text.startswith("\r") for text in out)
    assert len(out[1]) >= len(out[0])
    assert out[1].rstrip().endswith("30 samples")
    assert out[-1].endswith(": done\n")


def test_ci_log_gets_a_line_every_few_minutes_not_every_round() -> None:
    now = [0.0]
    out: list[str] = []
    progress = Progress(out.append, tty=False, every=180, clock=lambda: now[0])
    for second in range(600):
        now[0] = float(second)
        progress.update(status(second))
    progress.finish(status(600), "done")
    assert len(out) == 5  # at 0, 180, 360, 540 s, and the closing line
    assert all(text.endswith("\n") and "\r" not in text for text in out)


def test_tty_line_is_cut_to_the_terminal_width() -> None:
    written: list[str] = []
    progress = Progress(written.append, tty=True, columns=40)
    progress.update(Status(5400, 86400, 15, 81000, "nearest: clickhouse RAM peak 91% of budget"))
    assert written == ["\r" + "k2budget burn-in 1h30m / 24h (22h30m left), 15 containers"[:39]]
