"""The Prometheus source against a real Prometheus server holding known cAdvisor series."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_support import (
    COMPOSE_PROJECT,
    COMPOSE_SERVICE,
    Container,
    PrometheusServer,
    Proxy,
    backfill,
    basic,
    compose_labels,
    container_id,
    free_port,
    kube_labels,
    openmetrics,
    require_binaries,
    scrapes,
)

from pytest_k2budget.budgets import Budgets, parse_budgets
from pytest_k2budget.criteria import Verdict, judge_all
from pytest_k2budget.errors import K2InputError
from pytest_k2budget.options import Settings
from pytest_k2budget.recording import Recorder, read_recording
from pytest_k2budget.sources.prometheus import CPU, MAX_POINTS, OOM, RAM, load_prometheus
from pytest_k2budget.sources.prometheus import START as START_TIME
from pytest_k2budget.window import TOTAL, Window

pytestmark = pytest.mark.prometheus

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
EVERY = 10.0  # scrape interval, and the query step unless a test says otherwise
SPAN = 1800.0
# Prometheus scrapes each target at its own offset, so query steps fall between scrapes: the usual case.
START = T0 + EVERY / 2
MIB = 1 << 20
TIMES = scrapes(T0 - 60, T0 + SPAN, EVERY)  # the stack ran a minute before the window


def _k(times: np.ndarray) -> np.ndarray:
    return np.rint((times - T0) / EVERY)


def steady(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    k = _k(times)
    ram = 300 * MIB + 20 * MIB * np.sin(2 * np.pi * k / 53)
    return 0.40 + 0.03 * np.sin(2 * np.pi * k / 37), np.rint(ram / 4096) * 4096  # whole pages, as cgroups count


def bursty(times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """0.2 cores and 280 MiB, with 40 s bursts to 0.9 cores and 320 MiB every 5 minutes."""
    burst = np.isin(_k(times) % 30, (10, 11, 12, 13))
    return np.where(burst, 0.9, 0.2), np.where(burst, 320.0 * MIB, 280.0 * MIB)


def flat(times: np.ndarray, cpu: float, ram: float) -> tuple[np.ndarray, np.ndarray]:
    return np.full(times.size, cpu), np.full(times.size, ram)


def compose(project: str, service: str, n: int, cid: int, load: tuple[np.ndarray, np.ndarray],
            times: np.ndarray = TIMES, *, restarts: tuple[float, ...] = (), ooms: tuple[float, ...] = (),
            ends: bool = False, lifecycle: bool = True) -> Container:
    cpu, ram = load
    return Container(compose_labels(project, service, f"{project}-{service}-{n}", container_id(cid)), times, cpu,
                     ram, started=float(times[0]) - 3600, restarts=restarts, ooms=ooms, ends=ends,
                     lifecycle=lifecycle)


def stack_containers() -> list[Container]:
    burst_cpu = np.where((TIMES > T0 + 600) & (TIMES <= T0 + 900), 0.8, 0.3)
    first = TIMES[TIMES <= T0 + 1200]
    second = TIMES[TIMES > T0 + 1200]
    return [
        compose("over", "api", 1, 1, (burst_cpu, np.full(TIMES.size, 100.0 * MIB))),
        compose("over", "db", 1, 2, flat(TIMES, 0.5, 1280.0 * MIB)),
        # Restarted in place at 00:10:03 (same container, new start time), then recreated at 00:20:05 (a new
        # container id under the same name, as `docker compose up --force-recreate` does).
        compose("life", "web", 1, 3, flat(first, 0.1, 50.0 * MIB), first, restarts=(T0 + 603,), ends=True),
        Container(compose_labels("life", "web", "life-web-1", container_id(4)), second,
                  *flat(second, 0.1, 50.0 * MIB), started=T0 + 1205),
        compose("life", "calm", 1, 5, flat(TIMES, 0.1, 20.0 * MIB)),
        compose("oom", "worker", 1, 6, flat(TIMES, 0.2, 90.0 * MIB), ooms=(T0 + 904,)),
        compose("scaled", "shard", 1, 7, flat(TIMES, 0.3, 200.0 * MIB)),
        compose("scaled", "shard", 2, 8, flat(TIMES, 0.3, 200.0 * MIB)),
        compose("bare", "job", 1, 9, flat(TIMES, 0.1, 10.0 * MIB), lifecycle=False),
        compose("agree", "steady", 1, 10, steady(TIMES)),
        compose("agree", "bursty", 1, 11, bursty(TIMES)),
        Container(kube_labels("shop", "cart-7d9f-abcde", "cart", container_id(12)), TIMES,
                  *flat(TIMES, 0.25, 150.0 * MIB), started=T0 - 7200),
        Container(kube_labels("shop", "cart-7d9f-fghij", "cart", container_id(13)), TIMES,
                  *flat(TIMES, 0.25, 150.0 * MIB), started=T0 - 7200),
        # The pod's own cgroup, which holds its containers: counting it too would double the figures.
        Container(kube_labels("shop", "cart-7d9f-abcde", "", ""), TIMES, *flat(TIMES, 0.3, 160.0 * MIB),
                  started=T0 - 7200),
    ]


@dataclass(frozen=True)
class Stack:
    url: str
    prometheus: str
    promtool: str
    text: str


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    prometheus, promtool = require_binaries()
    text = openmetrics(stack_containers())
    tsdb = tmp_path_factory.mktemp("prometheus") / "tsdb"
    backfill(promtool, text, tsdb)
    with PrometheusServer(prometheus, tsdb) as server:
        yield Stack(server.url, prometheus, promtool, text)


def settings(url: str, *, start: float = START, end: float = START + SPAN, interval: float | None = EVERY,
             project: str | None = None, service_label: str = COMPOSE_SERVICE,
             project_label: str = COMPOSE_PROJECT, instance_label: str = "name") -> Settings:
    return Settings(mode="prometheus", budgets_path=Path("budgets.yml"), interval=interval, compose_project=project,
                    prometheus_url=url, window_start=start, window_end=end, service_label=service_label,
                    project_label=project_label, instance_label=instance_label)


def budgets(project: str, services: str) -> Budgets:
    return parse_budgets(f"version: 1\nstack:\n  compose_project: {project}\nservices:\n{services}")


def judged(url: str, budget: Budgets, **kwargs: Any) -> tuple[Window, dict[tuple[str, str], Verdict]]:
    window = load_prometheus(budget, settings(url, **kwargs))
    return window, judge_all(window, budget)


def test_service_over_budget_and_missing_service(stack: Stack) -> None:
    window, verdicts = judged(stack.url, budgets("over", "  api: {cpu: 0.5, ram: 256MB}\n"
                                                        "  db: {cpu: 1.0, ram: 1GB}\n"
                                                        "  ghost: {cpu: 0.1, ram: 64MB}\n"))
    assert window.source == f"prometheus {stack.url}"
    assert (window.interval, window.planned, window.rounds) == (EVERY, SPAN, 181)
    assert not window.partial and window.restarts_unobservable is None
    p99 = verdicts["api", "cpu_p99"]
    assert p99.status == "failed" and p99.measured == pytest.approx(0.8, rel=1e-6)
    assert "api: CPU p99 0.80 cores > budget 0.50 (+60.0%); 30 of 181 samples above budget" in p99.message
    assert verdicts["api", "cpu_spike"].status == "passed"
    assert verdicts["api", "ram_max"].measured == 100 * MIB
    ram = verdicts["db", "ram_max"]
    assert ram.status == "failed" and ram.measured == 1280 * MIB
    assert "db: RAM max 1.25GiB > budget 1GB (+25.0%)" in ram.message
    assert verdicts["db", "cpu_p99"].measured == pytest.approx(0.5, rel=1e-6)
    assert {v.status for (s, _), v in verdicts.items() if s in ("api", "db") and _ == "restarts"} == {"passed"}
    for criterion in ("cpu_p99", "cpu_spike", "ram_max", "restarts"):
        ghost = verdicts["ghost", criterion]
        assert ghost.status == "failed" and "ghost: no samples: matched 0 containers" in ghost.message
    assert verdicts[TOTAL, "cpu_p99"].measured == pytest.approx(1.3, rel=1e-6)


def test_restart_and_recreation_count_against_max_restarts(stack: Stack) -> None:
    window, verdicts = judged(stack.url, budgets("life", "  web: {cpu: 1, ram: 1GB, max_restarts: 1}\n"
                                                        "  calm: {cpu: 1, ram: 1GB}\n"))
    verdict = verdicts["web", "restarts"]
    assert verdict.status == "failed" and verdict.measured == 2
    assert "web: 2 restarts (max 1), 0 OOM kills: restart at 00:10:03Z" in verdict.message
    assert "recreate at 00:20:05Z, life-web-1 (040404040404) replaces life-web-1 (030303030303)" in verdict.message
    assert [c.id for c in window.containers_of("web")] == [container_id(3), container_id(4)]
    # The replaced container's last RAM reading is not carried over into its successor's rounds.
    assert verdicts["web", "ram_max"].measured == 50 * MIB
    assert verdicts["calm", "restarts"].status == "passed"
    assert verdicts["calm", "restarts"].message == "calm: 0 restarts (max 0), 0 OOM kills"


def test_oom_kill_fails_restarts(stack: Stack) -> None:
    _, verdicts = judged(stack.url, budgets("oom", "  worker: {cpu: 1, ram: 1GB, max_restarts: 3}\n"))
    verdict = verdicts["worker", "restarts"]
    assert verdict.status == "failed" and verdict.measured == 0
    assert "worker: 0 restarts (max 3), 1 OOM kill: oom_kill at 00:15:15Z" in verdict.message


def test_scaled_service_is_judged_on_the_sum_of_its_replicas(stack: Stack) -> None:
    window, verdicts = judged(stack.url, budgets("scaled", "  shard: {cpu: 0.5, ram: 512MB}\n"))
    assert [c.name for c in window.containers_of("shard")] == ["scaled-shard-1", "scaled-shard-2"]
    cpu = verdicts["shard", "cpu_p99"]
    assert cpu.status == "failed" and cpu.measured == pytest.approx(0.6, rel=1e-6)
    assert cpu.message.endswith("(sum of 2 containers)")
    assert verdicts["shard", "ram_max"].status == "passed" and verdicts["shard", "ram_max"].measured == 400 * MIB
    assert verdicts["shard", "restarts"].status == "passed"


def test_kubernetes_labels(stack: Stack) -> None:
    window, verdicts = judged(stack.url, budgets("shop", "  cart: {cpu: 1, ram: 1GB}\n"), service_label="container",
                              project_label="namespace", instance_label="pod")
    assert sorted(c.name for c in window.containers) == ["cart-7d9f-abcde", "cart-7d9f-fghij"]
    assert verdicts["cart", "cpu_p99"].measured == pytest.approx(0.5, rel=1e-6)
    assert verdicts["cart", "ram_max"].measured == 300 * MIB


def test_restarts_are_skipped_without_lifecycle_series(stack: Stack) -> None:
    window, verdicts = judged(stack.url, budgets("bare", "  job: {cpu: 1, ram: 1GB}\n"))
    assert window.restarts_unobservable is not None
    verdict = verdicts["job", "restarts"]
    assert verdict.status == "skipped"
    assert f"no {START_TIME} or {OOM} series for the stack" in verdict.message
    assert verdicts["job", "ram_max"].status == "passed"


def record(path: Path) -> Window:
    """The same known samples as the backfilled `agree` project, as a live run would have recorded them."""
    times = scrapes(T0, T0 + SPAN, EVERY)
    recorder = Recorder(Window(source="docker", interval=EVERY, planned=SPAN), path)
    loads = []
    for n, (service, load) in enumerate((("steady", steady), ("bursty", bursty))):
        recorder.add_container(container_id(10 + n), f"agree-{service}-1", service)
        loads.append(load(times))
    for i, t in enumerate(times):
        recorder.add_round(float(t), [(n, float(cpu[i]), float(ram[i])) for n, (cpu, ram) in enumerate(loads)])
    recorder.close()
    with path.open(encoding="utf-8") as lines:
        return read_recording(str(path), lines)


@pytest.mark.parametrize("offset", [EVERY / 2, 0.0], ids=["steps-between-scrapes", "steps-on-scrapes"])
def test_prometheus_agrees_with_a_recording_of_the_same_samples(stack: Stack, tmp_path: Path, offset: float) -> None:
    """Same verdicts; RAM figures identical; CPU figures identical when the steps fall between scrapes (each
    rate() spans exactly one scrape interval, extrapolated proportionally to the range), and within half the
    largest round-to-round change when they fall on scrapes (Prometheus 2's closed ranges then hold three
    scrapes, so each figure is the mean of two recorded rounds)."""
    budget = budgets("agree", "  steady: {cpu: 0.5, ram: 512MB}\n  bursty: {cpu: 0.5, ram: 256MB}\n")
    recorded = record(tmp_path / "agree.jsonl")
    expected = judge_all(recorded, budget)
    window, verdicts = judged(stack.url, budget, start=T0 + offset, end=T0 + SPAN + offset)
    earlier = scrapes(T0, T0 + SPAN, EVERY) - EVERY
    previous = {"steady": steady(earlier)[0], "bursty": bursty(earlier)[0]}
    previous[TOTAL] = previous["steady"] + previous["bursty"]
    assert {k: v.status for k, v in verdicts.items()} == {k: v.status for k, v in expected.items()}
    assert {k: v.status for k, v in expected.items() if v.status == "failed"} == {
        ("bursty", "cpu_p99"): "failed", ("bursty", "ram_max"): "failed", (TOTAL, "cpu_p99"): "failed"}
    assert window.rounds == recorded.rounds
    for service in ("steady", "bursty", TOTAL):
        mine, theirs = window.series(service), recorded.series(service)
        np.testing.assert_array_equal(mine.times, theirs.times + offset)
        np.testing.assert_array_equal(mine.ram, theirs.ram)
        before = previous[service]
        if offset:
            np.testing.assert_allclose(mine.cpu, theirs.cpu, rtol=1e-6)
        else:
            assert (np.allclose(mine.cpu, (before + theirs.cpu) / 2, rtol=1e-6)
                    or np.allclose(mine.cpu, theirs.cpu, rtol=1e-6))  # Prometheus 3: left-open ranges
        tolerance = 1e-6 if offset else float(np.max(np.abs(theirs.cpu - before))) / 2 + 1e-6
        for criterion in ("cpu_p99", "cpu_spike", "ram_max"):
            if (service, criterion) not in expected:
                continue
            mine_v, theirs_v = verdicts[service, criterion], expected[service, criterion]
            assert mine_v.measured is not None and theirs_v.measured is not None
            if criterion == "ram_max":
                assert mine_v.measured == theirs_v.measured
            else:
                assert math.isclose(mine_v.measured, theirs_v.measured, rel_tol=tolerance, abs_tol=tolerance)


def test_one_range_query_per_metric_for_the_whole_stack(stack: Stack) -> None:
    with Proxy(stack.url) as proxy:
        load_prometheus(budgets("over", "  api: {cpu: 1, ram: 1GB}\n"), settings(proxy.url))
    selector = f'{{{COMPOSE_SERVICE}!="",{COMPOSE_PROJECT}="over"}}'
    assert sorted(next(m for m in (CPU, RAM, START_TIME, OOM) if m in r["query"]) for r in proxy.requests) == sorted(
        (CPU, RAM, START_TIME, OOM))
    for request in proxy.requests:
        assert selector in request["query"]
        assert (request["start"], request["end"], request["step"]) == (f"{START:.3f}", f"{START + SPAN:.3f}", "10.000")


def test_long_windows_are_chunked_under_the_points_limit(stack: Stack) -> None:
    start = START + SPAN - MAX_POINTS * EVERY  # 11,001 steps: one query would be refused
    with Proxy(stack.url) as proxy:
        window = load_prometheus(budgets("over", "  api: {cpu: 1, ram: 1GB}\n"), settings(proxy.url, start=start))
    assert len(proxy.requests) == 8
    for metric in (CPU, RAM, START_TIME, OOM):
        chunks = [(float(r["start"]), float(r["end"])) for r in proxy.requests if metric in r["query"]]
        assert [(end - begin) / EVERY + 1 for begin, end in chunks] == [MAX_POINTS, 1]
        assert (chunks[0][0], chunks[1][1]) == (start, START + SPAN)
    # The stack's data covers the last half hour only: the window says so.
    assert window.round_times[0] == START - 60 and window.partial
    assert window.rounds == 187


def test_credentials_are_sent_and_never_shown(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    budget = budgets("over", "  api: {cpu: 1, ram: 1GB}\n")
    with Proxy(stack.url, require="Bearer s3cr3t-t0ken") as proxy:
        with pytest.raises(K2InputError) as refused:
            load_prometheus(budget, settings(proxy.url))
        assert str(refused.value) == (f"Prometheus at {proxy.url} refused access (HTTP 401 Unauthorized): no "
                                      "credentials were sent; set K2_PROMETHEUS_TOKEN or "
                                      "K2_PROMETHEUS_USER/K2_PROMETHEUS_PASSWORD")
        monkeypatch.setenv("K2_PROMETHEUS_TOKEN", "wr0ng-t0ken")
        with pytest.raises(K2InputError, match="the credentials sent were refused") as wrong:
            load_prometheus(budget, settings(proxy.url))
        assert "wr0ng" not in str(wrong.value)
        monkeypatch.setenv("K2_PROMETHEUS_TOKEN", "s3cr3t-t0ken")
        assert load_prometheus(budget, settings(proxy.url)).rounds == 181
    monkeypatch.delenv("K2_PROMETHEUS_TOKEN")
    with Proxy(stack.url, require=basic("k2", "pa55:word")) as proxy:
        with_userinfo = proxy.url.replace("http://", "http://k2:pa55%3Aword@")
        window = load_prometheus(budget, settings(with_userinfo))
        assert window.source == f"prometheus {proxy.url.replace('http://', 'http://***@')}"
        monkeypatch.setenv("K2_PROMETHEUS_USER", "k2")
        monkeypatch.setenv("K2_PROMETHEUS_PASSWORD", "pa55:word")
        assert load_prometheus(budget, settings(proxy.url)).rounds == 181


def test_unreachable_server_names_the_redacted_url() -> None:
    url = f"http://k2:hunter2@127.0.0.1:{free_port()}"
    with pytest.raises(K2InputError) as error:
        load_prometheus(budgets("over", "  api: {cpu: 1, ram: 1GB}\n"), settings(url))
    message = str(error.value)
    assert message.startswith(f"cannot reach Prometheus at http://***@{url.rpartition('@')[2]}: ")
    assert "hunter2" not in message and "\n" not in message


def test_http_error_names_the_status(stack: Stack) -> None:
    with Proxy(stack.url, status=502) as proxy, pytest.raises(K2InputError) as error:
        load_prometheus(budgets("over", "  api: {cpu: 1, ram: 1GB}\n"), settings(proxy.url))
    assert str(error.value) == (f"Prometheus at {proxy.url} answered HTTP 502 Bad Gateway: "
                                "<html><body>upstream trouble</body></html>")


def test_selector_matching_no_series_is_named(stack: Stack) -> None:
    with pytest.raises(K2InputError) as error:
        load_prometheus(budgets("nosuch", "  api: {cpu: 1, ram: 1GB}\n"), settings(stack.url))
    assert str(error.value).startswith(
        f'Prometheus at {stack.url} has no series matching {RAM}{{{COMPOSE_SERVICE}!="",'
        f'{COMPOSE_PROJECT}="nosuch"}} between 2026-01-01T00:00:05Z and 2026-01-01T00:30:05Z')


def test_bad_label_option_is_refused_before_any_query() -> None:
    with pytest.raises(K2InputError, match="--k2-service-label: expected a Prometheus label name"):
        load_prometheus(budgets("over", "  api: {cpu: 1, ram: 1GB}\n"),
                        settings("http://127.0.0.1:1", service_label="com.docker.compose.service"))


def test_prometheus_error_response_is_one_line(stack: Stack, tmp_path: Path) -> None:
    tsdb = tmp_path / "tsdb"
    backfill(stack.promtool, stack.text, tsdb)
    # A server that may load only a few samples per query refuses ours with an execution error.
    with PrometheusServer(stack.prometheus, tsdb, "--query.max-samples=50") as server, \
            pytest.raises(K2InputError) as error:
        load_prometheus(budgets("over", "  api: {cpu: 1, ram: 1GB}\n"), settings(server.url))
    message = str(error.value)
    assert message.startswith(f"Prometheus at {server.url} rejected the query (HTTP 422, execution: query "
                              "processing would load too many samples into memory")
    assert f"query: sum by ({COMPOSE_SERVICE}, name, id, instance) (rate({CPU}" in message


def test_the_plugin_judges_a_past_window_from_prometheus(stack: Stack, pytester: pytest.Pytester) -> None:
    pytester.makefile(".yml", budgets="version: 1\nstack: {compose_project: over}\nservices:\n"
                                      "  api: {cpu: 0.5, ram: 256MB}\n  db: {cpu: 1.0, ram: 2GB}\n")
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(START))
    result = pytester.runpytest(
        "--k2-source=prometheus", f"--k2-prometheus-url={stack.url}", f"--k2-window-start={start}",
        "--k2-window-end=2026-01-01T00:30:05Z", "--k2-interval=10s", "-v",
    )
    assert result.ret == 1
    result.stdout.fnmatch_lines([
        "budgets.yml::api::cpu_p99 FAILED*",
        "budgets.yml::api::cpu_spike PASSED*",
        "budgets.yml::db::ram_max PASSED*",
        "budgets.yml::db::restarts PASSED*",
        "budgets.yml::TOTAL::cpu_p99 PASSED*",
    ])
    result.stdout.fnmatch_lines(["*api: CPU p99 0.80 cores > budget 0.50*", "*source: prometheus http://127.0.0.1:*"])
