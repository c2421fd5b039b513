"""`pytest --k2-burn-in` end to end against the real Docker Engine: the plugin's live surface."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Stack, wait_for

pytestmark = pytest.mark.docker


def budgets(stack: Stack) -> str:
    return (f"version: 1\nstack:\n  name: live stack\n  compose_project: {stack.project}\nservices:\n"
            "  web: {cpu: 0.5, ram: 64MB}\n  db: {cpu: 0.5, ram: 64MB}\n")


def rounds_in(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text().splitlines() if line.startswith('{"t"'))


def test_live_burn_in_judges_records_and_replays(docker_stack: Stack, pytester: pytest.Pytester) -> None:
    docker_stack.run("web")
    pytester.makefile(".yml", budgets=budgets(docker_stack))
    result = pytester.runpytest_subprocess("--k2-burn-in=3s", "--k2-record=run.jsonl", "-v")
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "budgets.yml::web::cpu_p99 PASSED*", "budgets.yml::web::cpu_spike PASSED*",
        "budgets.yml::web::ram_max PASSED*", "budgets.yml::web::restarts PASSED*",
        "budgets.yml::db::cpu_p99 FAILED*",
    ])
    result.stdout.fnmatch_lines(["*db: no samples: matched 0 containers*", "recording: *run.jsonl"])
    assert rounds_in(pytester.path / "run.jsonl") == 3
    replay = pytester.runpytest_subprocess("--k2-replay=run.jsonl", "-v")
    assert replay.parseoutcomes() == result.parseoutcomes()


def test_unreachable_daemon_is_a_one_line_usage_error(pytester: pytest.Pytester,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makefile(".yml", budgets="version: 1\nservices:\n  web: {cpu: 1, ram: 1GB}\n")
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    result = pytester.runpytest_subprocess("--k2-burn-in=5s")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "DOCKER_HOST=tcp://127.0.0.1:9" in err and "Traceback" not in err + result.stdout.str()


def test_unwritable_recording_is_a_one_line_usage_error(docker_stack: Stack, pytester: pytest.Pytester) -> None:
    pytester.makefile(".yml", budgets=budgets(docker_stack))
    (pytester.path / "taken").write_text("a file, not a folder")
    result = pytester.runpytest_subprocess("--k2-burn-in=5s", "--k2-record=taken/run.jsonl")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "taken/run.jsonl: --k2-record: cannot write the recording" in result.stderr.str()
    assert "Traceback" not in result.stderr.str() + result.stdout.str()


def test_sigint_ends_the_window_and_judges_a_partial_run(docker_stack: Stack, pytester: pytest.Pytester) -> None:
    docker_stack.run("web")
    docker_stack.run("db")
    pytester.makefile(".yml", budgets=budgets(docker_stack))
    record = pytester.path / "run.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "--k2-burn-in=10m", f"--k2-record={record}", "--k2-results-md=r.md",
         "-p", "no:cacheprovider"],
        cwd=pytester.path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for(lambda: rounds_in(record) >= 3, timeout=30, what="three rounds")
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, out
    assert "PARTIAL window (covered" in out and "of 10m, interrupted by SIGINT" in out
    assert "10 passed" in out
    assert "PARTIAL window" in (pytester.path / "r.md").read_text(encoding="utf-8")
    end = json.loads(record.read_text().splitlines()[-1])
    assert end["end"]["interrupted"] is True


def test_fail_fast_ends_the_window_at_a_verdict_that_cannot_change(docker_stack: Stack,
                                                                    pytester: pytest.Pytester) -> None:
    docker_stack.run("web", "dd if=/dev/zero of=/data/fill bs=1M count=100 && sleep 3600",
                     tmpfs={"/data": "size=200m"})
    docker_stack.run("db")
    pytester.makefile(".yml", budgets=budgets(docker_stack))
    started = time.monotonic()
    result = pytester.runpytest_subprocess("--k2-burn-in=5m", "--k2-fail-fast", "--k2-record=run.jsonl")
    assert time.monotonic() - started < 60
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*PARTIAL window (covered * of 5m, fail-fast: web RAM*", "*web: RAM max*"])


def test_xdist_samples_the_stack_once(docker_stack: Stack, pytester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    docker_stack.run("web")
    docker_stack.run("db")
    pytester.makefile(".yml", budgets=budgets(docker_stack))
    result = pytester.runpytest_subprocess("--k2-burn-in=3s", "-n", "2", "--k2-results-md=r.md")
    assert result.ret == 0
    result.assert_outcomes(passed=10)
    recordings = list((pytester.path / ".k2budget").glob("*.jsonl"))
    assert len(recordings) == 1 and rounds_in(recordings[0]) == 3
    assert (pytester.path / "r.md").read_text(encoding="utf-8").count("✅") == 3
