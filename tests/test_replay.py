from __future__ import annotations

import math
from pathlib import Path

import pytest

from pytest_k2budget.budgets import load_budgets, parse_budgets
from pytest_k2budget.criteria import judge_all
from pytest_k2budget.errors import K2InputError
from pytest_k2budget.recording import Recorder, dump_recording, read_recording
from pytest_k2budget.sources.replay import load_replay
from pytest_k2budget.window import Event, Gap, Window

ROOT = Path(__file__).resolve().parent.parent
BUDGETS = parse_budgets(
    "version: 1\nstack: {compose_project: k2}\nservices:\n  web: {cpu: 1.0, ram: 100MB}\n  db: {cpu: 2.0, ram: 1GB}\n"
)
MiB = 2**20


def write(tmp_path: Path, text: str, name: str = "stats.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_step_doc_csv_rounds_start_when_a_name_repeats(tmp_path: Path) -> None:
    path = write(tmp_path, (
        "k2-web-1,50.00%,10MiB / 1GiB,1.00%\n"
        "k2_db_1,120.50%,1.5GiB / 8GiB,18.75%\n"
        "k2-web-1,75.00%,20MiB / 1GiB,2.00%\n"
        "k2_db_1,--,-- / --,--\n"
        "k2-web-1,25.00%,12.5MB / 1GB,1.25%\n"  # older docker clients printed decimal units
        "k2_db_1,0.00%,0B / 0B,0.00%\n"
    ))
    window = load_replay(path, BUDGETS, interval=300)
    assert window.rounds == 3 and window.interval == 300
    web, db = window.series("web"), window.series("db")
    assert web.cpu.tolist() == [0.5, 0.75, 0.25]
    assert web.ram.tolist() == [10 * MiB, 20 * MiB, 12_500_000]
    assert db.cpu.tolist() == [1.205] and db.ram.tolist() == [round(1.5 * 2**30)]
    assert web.times[1] - web.times[0] == 300
    assert math.isclose(window.ended or 0, path.stat().st_mtime)  # the loop appended its last round then
    assert window.restarts_unobservable is not None


def test_csv_names_map_to_budgeted_services_and_unknown_ones_stay_visible(tmp_path: Path) -> None:
    path = write(tmp_path, "k2-web-2,1%,1MiB / 1GiB,0%\nredis,1%,1MiB / 1GiB,0%\nk2-db-1,1%,1MiB / 1GiB,0%\n")
    window = load_replay(path, BUDGETS, interval=5)
    assert {c.name: c.service for c in window.containers} == {"k2-web-2": "web", "redis": "redis", "k2-db-1": "db"}


def test_truncated_last_line_is_dropped_with_a_warning(tmp_path: Path) -> None:
    path = write(tmp_path, "k2-web-1,50.00%,10MiB / 1GiB,1.00%\nk2-db-1,50.00%,10Mi")
    window = load_replay(path, BUDGETS, interval=300)
    assert window.samples == 1 and [c.name for c in window.containers] == ["k2-web-1"]
    assert any("stats.csv:2: truncated last line" in w for w in window.warnings)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("k2-web-1,50%,10MiB / 1GiB,1%\nk2-web-1,fifty,10MiB / 1GiB,1%\nk2-web-1,1%,1MiB / 1GiB,1%\n",
         ["stats.csv:2", "percentage", "'fifty'"]),
        ("k2-web-1,50%,10MiB / 1GiB\nk2-web-1,1%,1MiB / 1GiB,1%\n", ["stats.csv:1", "4 fields"]),
        ("k2-web-1,50%,10 parsecs / 1GiB,1%\nk2-web-1,1%,1MiB / 1GiB,1%\n", ["stats.csv:1", "12.5MiB"]),
        ("k2-web-1,50%,10MiB,1%\n\n", ["stats.csv:1", "used / limit"]),
        ("", ["stats.csv", "empty replay file"]),
        ("\n\n", ["stats.csv", "no samples"]),
    ],
)
def test_malformed_csv_names_the_line(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(K2InputError) as excinfo:
        load_replay(path, BUDGETS, interval=300)
    for fragment in fragments:
        assert fragment in str(excinfo.value)


def test_missing_replay_file(tmp_path: Path) -> None:
    with pytest.raises(K2InputError, match="replay file not found"):
        load_replay(tmp_path / "none.csv", BUDGETS, interval=1)


def recorded_window(path: Path) -> Window:
    window = Window(source="docker", interval=1.0, planned=10.0)
    recorder = Recorder(window, path)
    web = recorder.add_container("abc", "k2-web-1", "web")
    db = recorder.add_container("def", "k2-db-1", "db")
    for i in range(5):
        recorder.add_round(1000.0 + i, [(web.key, math.nan if i == 0 else 0.25 * i, 4096.0 * (i + 1)),
                                        (db.key, 1.5, 512 * MiB)])
    recorder.add_event(Event(1002.5, "oom_kill", "k2-db-1", "db", "exit code 137"))
    recorder.add_gap(Gap(1005.0, 1009.0, "daemon unreachable"))
    window.interrupted, window.stop_reason = True, "interrupted by SIGTERM"
    recorder.close()
    return window


def test_recording_round_trips_samples_events_gaps_and_interrupts(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    original = recorded_window(path)
    with path.open() as handle:
        replayed = read_recording(str(path), handle)
    for service in ("web", "db"):
        a, b = original.series(service), replayed.series(service)
        assert a.times.tolist() == b.times.tolist()
        assert a.ram.tolist() == b.ram.tolist()
        assert [x for x in a.cpu.tolist() if not math.isnan(x)] == [x for x in b.cpu.tolist() if not math.isnan(x)]
    assert replayed.events == original.events and replayed.gaps == original.gaps
    assert replayed.interrupted and replayed.stop_reason == "interrupted by SIGTERM" and replayed.partial
    assert judge_all(original, BUDGETS) == judge_all(replayed, BUDGETS)


def test_recording_killed_mid_write_replays_what_it_holds(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    recorded_window(path)
    lines = path.read_text().splitlines(keepends=True)
    # A run killed during round 4: no end line, the last round cut in the middle.
    cut = "".join(lines[:6]) + lines[6][:15]
    path.write_text(cut)
    window = load_replay(path, BUDGETS, interval=1)
    assert window.rounds == 3 and not window.interrupted
    assert any("truncated last line dropped" in w for w in window.warnings)


def test_malformed_recording_line_in_the_middle_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    recorded_window(path)
    lines = path.read_text().splitlines(keepends=True)
    lines[4] = '{"t": oops}\n'
    path.write_text("".join(lines))
    with pytest.raises(K2InputError, match=r"run.jsonl:5: malformed recording line"):
        load_replay(path, BUDGETS, interval=1)


def test_unsupported_recording_version(tmp_path: Path) -> None:
    path = write(tmp_path, '{"k2budget_recording": 99, "interval": 1}\n', "r.jsonl")
    with pytest.raises(K2InputError, match=r"r\.jsonl:1: unsupported recording version 99"):
        load_replay(path, BUDGETS, interval=1)


def test_dump_of_a_replayed_csv_judges_the_same(tmp_path: Path) -> None:
    budgets = load_budgets(ROOT / "examples" / "budgets.yml")
    window = load_replay(ROOT / "examples" / "burn-in-24h.csv", budgets, interval=300)
    dump_recording(window, tmp_path / "dump.jsonl")
    with (tmp_path / "dump.jsonl").open() as handle:
        again = read_recording(str(tmp_path / "dump.jsonl"), handle)
    assert judge_all(window, budgets) == judge_all(again, budgets)


def test_bundled_example_replays_to_the_verdicts_its_data_dictates() -> None:
    budgets = load_budgets(ROOT / "examples" / "budgets.yml")
    window = load_replay(ROOT / "examples" / "burn-in-24h.csv", budgets, interval=300)
    assert window.rounds == 288 and len(window.containers) == 13
    assert window.covered == 86400
    verdicts = judge_all(window, budgets)
    statuses = {key: v.status for key, v in verdicts.items()}
    assert all(s == "skipped" for (svc, c), s in statuses.items() if c == "restarts")
    assert all(s == "passed" for (svc, c), s in statuses.items() if c != "restarts")
    spark = window.series("spark-iceberg")
    # The 02:00 maintenance run goes above the budget twice: within p99, below the 2x spike limit.
    assert int((spark.cpu > 2.0).sum()) == 2 and spark.cpu.max() < 4.0
    assert len(window.series("grafana")) == 287  # one round Grafana was not running


HEADER = '{"k2budget_recording": 1, "interval": 1}\n{"c": 0, "id": "a", "name": "k2-web-1", "service": "web"}\n'


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        ('{"t": 1, "s": [[-1, 0.5, 100]]}\n{"t": 2, "s": []}\n', ["r.jsonl:3", "undeclared container"]),
        ('{"t": 1, "s": [[0, 0.5, 100], [0, 0.5, 100]]}\n{"t": 2, "s": []}\n', ["r.jsonl:3", "sampled twice"]),
        ('{"t": 5, "s": []}\n{"t": 4, "s": []}\n{"t": 6, "s": []}\n', ["r.jsonl:4", "before the previous round"]),
        ('{"e": {"t": 1, "kind": "explode", "container": "x", "service": "web"}}\n{"t": 2, "s": []}\n',
         ["r.jsonl:3", "unknown event kind 'explode'"]),
    ],
)
def test_inconsistent_recordings_are_refused_at_their_line(tmp_path: Path, body: str, fragments: list[str]) -> None:
    path = write(tmp_path, HEADER + body, "r.jsonl")
    with pytest.raises(K2InputError) as excinfo:
        load_replay(path, BUDGETS, interval=1)
    for fragment in fragments:
        assert fragment in str(excinfo.value)


def test_recording_with_a_zero_interval_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '{"k2budget_recording": 1, "interval": 0}\n', "r.jsonl")
    with pytest.raises(K2InputError, match=r"r\.jsonl:1: recording header: expected an interval > 0"):
        load_replay(path, BUDGETS, interval=1)
