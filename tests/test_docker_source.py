"""The live Docker source against the real engine: ground truth, docker stats side by side, lifecycle, replay,
read-only access, a daemon that drops, interrupt and fail-fast."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import numpy as np
import pytest

from conftest import Stack, budgets_for, live_settings, wait_for
from pytest_k2budget import criteria
from pytest_k2budget.budgets import Budgets
from pytest_k2budget.criteria import Verdict
from pytest_k2budget.errors import K2InputError
from pytest_k2budget.progress import Progress
from pytest_k2budget.recording import read_recording
from pytest_k2budget.sources.cgroups import CgroupReader
from pytest_k2budget.sources.docker import run_burn_in
from pytest_k2budget.units import parse_stats_size
from pytest_k2budget.window import Window

pytestmark = pytest.mark.docker

MiB = 1 << 20
BUSY = "while :; do :; done"
FILL_100MIB = "dd if=/dev/zero of=/data/fill bs=1M count=100 2>/dev/null && mkdir /data/done && sleep 3600"
BURN_IN = 14.0

SERVICES = """\
  cpu: {cpu: 0.6, ram: 32MB}
  mem: {cpu: 0.2, ram: 128MB}
  idle: {cpu: 0.1, ram: 16MB}
  oom: {cpu: 0.5, ram: 64MB}
  gone: {cpu: 0.1, ram: 16MB, max_restarts: 1}
  plain: {cpu: 0.1, ram: 16MB}
  missing: {cpu: 0.1, ram: 16MB}
"""


def filled(container: docker.models.containers.Container) -> bool:
    return container.exec_run(["sh", "-c", "[ -d /data/done ]"]).exit_code == 0


@dataclass
class LiveRun:
    stack: Stack
    budgets: Budgets
    window: Window
    verdicts: dict[tuple[str, str], Verdict]
    record: Path
    removed_at: float = 0.0
    recreated_at: float = 0.0
    # docker stats --no-stream, taken during the window: name -> (started, ended, cores, bytes)
    docker_stats: dict[str, tuple[float, float, float, int]] = field(default_factory=dict)


def docker_stats(names: list[str]) -> dict[str, tuple[float, float, float, int]]:
    started = time.time()
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}},{{.CPUPerc}},{{.MemUsage}}",
                          *names], check=True, capture_output=True, text=True, timeout=30).stdout
    ended = time.time()
    result = {}
    for line in out.splitlines():
        name, cpu, mem = line.split(",")
        result[name] = (started, ended, float(cpu.rstrip("%")) / 100, parse_stats_size(mem.split("/")[0]))
    return result


@pytest.fixture(scope="module")
def live(docker_client: docker.DockerClient, busybox_image: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveRun]:
    """One live window over a small stack that shows everything at once (about 20 s)."""
    stack = Stack(docker_client, busybox_image)
    try:
        cpu = stack.run("cpu", BUSY, nano_cpus=500_000_000)
        mem = stack.run("mem", FILL_100MIB, tmpfs={"/data": "size=200m"})
        stack.run("idle")
        stack.run("oom", "sleep 3; dd if=/dev/zero of=/dev/null bs=64M count=1", mem_limit="16m",
                  memswap_limit="16m", restart_policy={"Name": "always"})
        gone = stack.run("gone")
        stack.run("plain", labelled=False)
        wait_for(lambda: filled(mem), what="the tmpfs fill")
        record = tmp_path_factory.mktemp("live") / "burn-in.jsonl"
        run = LiveRun(stack, budgets_for(stack.project, SERVICES, "  total: {cpu: 2.0, ram: 1GB}\n"),
                      Window("docker", 1.0), {}, record)

        def meddle() -> None:
            time.sleep(3)
            run.docker_stats = docker_stats([cpu.name, mem.name])
            time.sleep(max(6 - (time.time() - start), 0))
            run.removed_at = time.time()
            gone.remove(force=True)
            time.sleep(3)
            run.recreated_at = time.time()
            stack.run("gone")

        start = time.time()
        thread = threading.Thread(target=meddle)
        thread.start()
        run.window = run_burn_in(run.budgets, live_settings(record, BURN_IN), Progress.silent())
        thread.join()
        run.verdicts = criteria.judge_all(run.window, run.budgets)
        yield run
    finally:
        stack.remove_all()


def cpu_of(window: Window, service: str) -> np.ndarray:
    cpu = window.series(service).cpu
    return cpu[~np.isnan(cpu)]


def test_window_covers_what_was_asked_and_is_recorded(live: LiveRun) -> None:
    window = live.window
    assert window.source == "docker" and window.interval == 1.0 and window.planned == BURN_IN
    assert window.rounds == BURN_IN
    assert not window.partial and not window.interrupted
    assert live.record.read_text().splitlines()[-1].startswith('{"end"')


def test_busy_loop_capped_at_half_a_core_reads_half_a_core(live: LiveRun) -> None:
    cpu = cpu_of(live.window, "cpu")
    # Every round has a CPU figure, the first one too (a priming read precedes it).
    assert cpu.size == BURN_IN
    assert float(np.mean(cpu)) == pytest.approx(0.50, abs=0.03)
    assert float(np.median(cpu)) == pytest.approx(0.50, abs=0.03)
    assert live.verdicts["cpu", "cpu_p99"].status == "passed"


def test_100mib_in_a_tmpfs_reads_100mib(live: LiveRun) -> None:
    ram = live.window.series("mem").ram
    assert ram.size == BURN_IN
    assert np.all(np.abs(ram - 100 * MiB) <= 0.05 * 100 * MiB)
    assert live.verdicts["mem", "ram_max"].status == "passed"


def test_idle_containers_pass_every_criterion(live: LiveRun) -> None:
    for service in ("idle", "plain"):
        for criterion in criteria.SERVICE_CRITERIA:
            verdict = live.verdicts[service, criterion]
            assert verdict.status == "passed", verdict.message


def test_unlabelled_container_is_mapped_by_its_name(live: LiveRun) -> None:
    assert [c.name for c in live.window.containers_of("plain")] == [f"{live.stack.project}-plain-1"]


def test_oom_kill_restarted_by_policy_fails_restarts(live: LiveRun) -> None:
    verdict = live.verdicts["oom", "restarts"]
    assert verdict.status == "failed"
    assert "oom_kill at" in verdict.message and "killed by the kernel OOM killer" in verdict.message
    assert "restart at" in verdict.message and "exit code 137, restarted by policy" in verdict.message
    kinds = [e.kind for e in live.window.events_of("oom")]
    assert kinds.count("oom_kill") >= 1 and kinds.count("restart") >= 1
    # Each kill is counted once although the event stream and the cgroup counter may both see it (the window
    # may end between a kill and its die event).
    assert kinds.count("oom_kill") <= kinds.count("die") + 1


def test_removed_container_shows_its_gap_and_recreation(live: LiveRun) -> None:
    events = {e.kind: e for e in live.window.events_of("gone")}
    assert events["destroy"].time == pytest.approx(live.removed_at, abs=1.0)
    assert events["recreate"].time == pytest.approx(live.recreated_at, abs=1.5)
    assert f"replacing {live.stack.project}-gone-1" in events["recreate"].detail
    times = live.window.series("gone").times
    hole = float(np.max(np.diff(times)))
    assert hole == pytest.approx(live.recreated_at - live.removed_at + 1, abs=1.5)
    assert not any(live.removed_at + 0.5 < t < live.recreated_at for t in times)
    restarts = live.verdicts["gone", "restarts"]
    assert restarts.status == "passed" and "recreate at" in restarts.message


def test_budgeted_service_without_container_fails(live: LiveRun) -> None:
    for criterion in criteria.SERVICE_CRITERIA:
        verdict = live.verdicts["missing", criterion]
        assert verdict.status == "failed"
        assert "no samples: matched 0 containers" in verdict.message


def test_side_by_side_with_docker_stats(live: LiveRun) -> None:
    """Same containers, same run: CPU and RAM within 5% of what docker stats --no-stream prints."""
    assert live.docker_stats, "docker stats printed nothing"
    for service in ("cpu", "mem"):
        name = live.window.containers_of(service)[0].name
        started, ended, cores, ram = live.docker_stats[name]
        series = live.window.series(service)
        # docker stats reads twice, about a second apart, between `started` and `ended`.
        during = (series.times >= started) & (series.times <= ended + 1)
        assert during.any()
        ours_ram = float(np.mean(series.ram[during]))
        # The busy loop holds about 450 KiB, which moves by whole 4 KiB pages between the instants the two
        # read it: 5% of it is under six pages, so it is compared to 16 pages instead.
        assert ours_ram == pytest.approx(ram, rel=0.05, abs=64 * 1024 if service == "cpu" else 0)
        if service == "cpu":
            assert float(np.mean(series.cpu[during])) == pytest.approx(cores, rel=0.05)


def test_recorded_run_replays_to_the_same_verdicts_and_figures(live: LiveRun) -> None:
    with live.record.open(encoding="utf-8") as handle:
        replayed = read_recording(str(live.record), handle)
    again = criteria.judge_all(replayed, live.budgets)
    assert again.keys() == live.verdicts.keys()
    for key, verdict in live.verdicts.items():
        assert (again[key].status, again[key].message, again[key].measured) == (
            verdict.status, verdict.message, verdict.measured), key
    np.testing.assert_array_equal(replayed.series("TOTAL").ram, live.window.series("TOTAL").ram)


# --- read-only access and a daemon that drops, through a logging proxy ------------------------------------------


class EngineProxy:
    """A TCP listener in front of the Docker socket that logs every request line and can be cut and restored."""

    REQUEST = re.compile(rb"(?:^|\r\n)(GET|HEAD|POST|PUT|DELETE|PATCH|OPTIONS) (\S+) HTTP/1\.[01]\r\n")

    def __init__(self, socket_path: str = "/var/run/docker.sock") -> None:
        self.socket_path = socket_path
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        """The daemon 'drops': refuse new connections and break open ones, the event stream included."""
        assert self._listener is not None
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.socket(socket.AF_UNIX)
            upstream.connect(self.socket_path)
            with self._lock:
                self._open += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, log: bool) -> None:
        try:
            while data := source.recv(65536):
                if log:
                    with self._lock:
                        self.requests += [(m.decode(), p.decode()) for m, p in self.REQUEST.findall(data)]
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[EngineProxy]:
    engine = EngineProxy()
    engine.start()
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{engine.port}")
    yield engine
    with contextlib.suppress(OSError):
        engine.cut()


def test_api_path_reads_only_and_survives_a_daemon_drop(docker_stack: Stack, proxy: EngineProxy,
                                                        tmp_path: Path) -> None:
    busy = docker_stack.run("cpu", BUSY, nano_cpus=500_000_000)
    docker_stack.run("idle")
    budgets = budgets_for(docker_stack.project, "  cpu: {cpu: 0.6, ram: 32MB}\n  idle: {cpu: 0.1, ram: 16MB}\n")
    cut_at: list[float] = []

    def drop() -> None:
        time.sleep(3.5)
        cut_at.append(time.time())
        proxy.cut()
        time.sleep(3)
        cut_at.append(time.time())
        proxy.start()

    thread = threading.Thread(target=drop)
    thread.start()
    reader = CgroupReader()
    paths = reader.locate(busy.id) if reader.available else None
    before = reader.read(paths, time.time()) if paths else None
    window = run_burn_in(budgets, live_settings(tmp_path / "r.jsonl", 12.0), Progress.silent(), sampler="api")
    after = reader.read(paths, time.time()) if paths else None
    thread.join()

    methods = {method for method, _ in proxy.requests}
    assert methods == {"GET"}, proxy.requests
    endpoints = {re.sub(r"/v[\d.]+", "", path).split("?")[0] for _, path in proxy.requests}
    allowed = re.compile(r"^/(version|containers/json|containers/[0-9a-f]{64}/(json|stats)|events)$")
    assert all(allowed.match(e) for e in endpoints), endpoints
    stats_calls = [p for _, p in proxy.requests if "/stats" in p]
    # One-shot: the daemon answers at once instead of waiting a second for a second sample.
    assert stats_calls and all("stream=false" in p.lower() and "one-shot=true" in p.lower() for p in stats_calls)

    # The drop became one gap, sampling went on after it, and the event stream resumed where it dropped.
    assert len(window.gaps) == 1
    gap = window.gaps[0]
    assert gap.start <= cut_at[0] + 0.1 and gap.end >= cut_at[1]
    assert "Docker daemon unreachable at DOCKER_HOST=tcp://127.0.0.1:" in gap.reason
    assert window.round_times[-1] > cut_at[1]
    assert any(e.kind == "gap" for e in window.events)
    since = [float(re.search(r"since=([\d.]+)", p).group(1)) for _, p in proxy.requests  # type: ignore[union-attr]
             if "/events" in p]
    assert len(since) >= 2 and since[-1] >= since[0]

    # Through the API, the busy loop reads what its cgroup counter says it used over the run (on a loaded
    # 2-core machine that may be a little under its 0.5 cap).
    used = 0.50
    if before and after and before.cpu_ns is not None and after.cpu_ns is not None:
        used = (after.cpu_ns - before.cpu_ns) / 1e9 / (after.time - before.time)
    assert float(np.mean(cpu_of(window, "cpu"))) == pytest.approx(used, abs=0.03)
    verdicts = criteria.judge_all(window, budgets)
    assert all(verdicts["idle", c].status == "passed" for c in criteria.SERVICE_CRITERIA)


def test_unreachable_daemon_is_one_line_naming_docker_host(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("DOCKER_HOST", f"tcp://127.0.0.1:{port}")
    budgets = budgets_for("nothing", "  web: {cpu: 1, ram: 1GB}\n")
    with pytest.raises(K2InputError) as raised:
        run_burn_in(budgets, live_settings(tmp_path / "r.jsonl", 5.0), Progress.silent())
    message = str(raised.value)
    assert f"DOCKER_HOST=tcp://127.0.0.1:{port}" in message and "\n" not in message
    assert not (tmp_path / "r.jsonl").exists()


# --- ending early -------------------------------------------------------------------------------------------------

INTERRUPTED_RUN = """
import json, sys
from pathlib import Path
from pytest_k2budget import criteria
from pytest_k2budget.progress import Progress
from pytest_k2budget.sources.cgroups import CgroupReader
from pytest_k2budget.sources.docker import run_burn_in
sys.path.insert(0, {tests!r})
from conftest import budgets_for, live_settings
budgets = budgets_for({project!r}, "  idle: {{cpu: 0.1, ram: 16MB}}\\n")
lines = []
window = run_burn_in(budgets, live_settings(Path({record!r}), 60.0), Progress(lines.append, tty=False, every=0))
verdicts = criteria.judge_all(window, budgets)
print(json.dumps({{"interrupted": window.interrupted, "partial": window.partial, "reason": window.stop_reason,
                  "rounds": window.rounds, "progress": lines,
                  "messages": [v.message for v in verdicts.values()],
                  "statuses": [v.status for v in verdicts.values()]}}))
"""


def test_interrupt_ends_in_a_judged_partial_window(docker_stack: Stack, tmp_path: Path) -> None:
    docker_stack.run("idle")
    record = tmp_path / "r.jsonl"
    code = INTERRUPTED_RUN.format(tests=str(Path(__file__).parent), project=docker_stack.project, record=str(record))
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wait_for(lambda: record.exists() and record.read_text().count('"t":') >= 3, what="three recorded rounds")
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    result = json.loads(out)
    assert result["interrupted"] and result["partial"] and result["reason"] == "interrupted by SIGINT"
    assert 3 <= result["rounds"] < 10
    assert all(m.startswith("PARTIAL window (covered ") and "of 1m, interrupted by SIGINT" in m
               for m in result["messages"])
    assert result["statuses"] == ["passed"] * 4 + ["passed"] * 2
    assert "interrupted by SIGINT" in result["progress"][-1]
    assert '"interrupted":true' in record.read_text().splitlines()[-1]


def test_fail_fast_ends_as_soon_as_a_verdict_is_final(docker_stack: Stack, tmp_path: Path) -> None:
    mem = docker_stack.run("mem", FILL_100MIB, tmpfs={"/data": "size=200m"})
    docker_stack.run("idle")
    wait_for(lambda: filled(mem), what="the tmpfs fill")
    budgets = budgets_for(docker_stack.project, "  mem: {cpu: 0.5, ram: 64MB}\n  idle: {cpu: 0.1, ram: 16MB}\n")
    started = time.monotonic()
    window = run_burn_in(budgets, live_settings(tmp_path / "r.jsonl", 60.0, fail_fast=True), Progress.silent())
    assert time.monotonic() - started < 10
    assert window.rounds == 1 and window.partial and not window.interrupted
    assert re.fullmatch(r"fail-fast: mem RAM 10\d\.\d\dMiB > budget 64MB", window.stop_reason or "")
    verdict = criteria.judge(window, budgets, "mem", "ram_max")
    assert verdict.status == "failed"
    assert verdict.message.startswith("PARTIAL window (covered 1s of 1m, fail-fast: mem RAM")


def test_a_window_ends_on_time_when_rounds_are_slower_than_the_interval(docker_stack: Stack, tmp_path: Path) -> None:
    docker_stack.run("web")
    budgets = budgets_for(docker_stack.project, "  web: {cpu: 1, ram: 1GB}\n")
    # Through the API, Engine 20.10 answers a repeated stats call at its next 1 s tick: rounds take about
    # a second, four times the interval asked.
    started = time.monotonic()
    window = run_burn_in(budgets, live_settings(tmp_path / "r.jsonl", 3.0, interval=0.25), Progress.silent(),
                         sampler="api")
    assert time.monotonic() - started < 3.0 + 4.0  # connecting and priming, plus at most one slow round
    assert window.ended is not None and window.started is not None
    assert window.ended - window.started < 3.0 + 1.5
