"""A real Prometheus for tests: known cAdvisor series written as OpenMetrics, backfilled into a TSDB with
`promtool tsdb create-blocks-from openmetrics`, served by `prometheus` on a free loopback port."""

from __future__ import annotations

import base64
import math
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType

import numpy as np
import numpy.typing as npt
import pytest

from pytest_k2budget.sources.prometheus import CPU, OOM, RAM, START

FloatArray = npt.NDArray[np.float64]

COMPOSE_SERVICE = "container_label_com_docker_compose_service"
COMPOSE_PROJECT = "container_label_com_docker_compose_project"


def require_binaries() -> tuple[str, str]:
    """Paths of prometheus and promtool; without them the tests fail in CI and skip elsewhere."""
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if prometheus is None or promtool is None:
        message = "Debian's prometheus and promtool are needed (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return prometheus, promtool


def compose_labels(project: str, service: str, name: str, container_id: str) -> dict[str, str]:
    """What cAdvisor on a Docker host attaches to a compose container's series."""
    return {COMPOSE_PROJECT: project, COMPOSE_SERVICE: service, "name": name, "id": f"/docker/{container_id}",
            "image": "k2budget/test:1", "instance": "cadvisor:8080", "job": "cadvisor"}


def kube_labels(namespace: str, pod: str, container: str, container_id: str) -> dict[str, str]:
    """What the kubelet's cAdvisor attaches to a pod container's series (container "" is the pod's own cgroup)."""
    return {"namespace": namespace, "pod": pod, "container": container, "instance": "node-1", "job": "kubelet",
            "id": f"/kubepods/burstable/pod{pod}/{container_id}" if container else f"/kubepods/burstable/pod{pod}"}


def container_id(n: int) -> str:
    return f"{n:02x}" * 32


@dataclass
class Container:
    """One container as cAdvisor reports it at each scrape.

    `cpu[i]` is the cores used over the interval ending at `times[i]` (so `cpu[0]` only sets how the counter
    got to its first value), `ram[i]` the working set at `times[i]`. A restart at time r resets the counters
    and moves the start time to r, as a new cgroup does; an OOM kill adds one to the OOM counter at the next
    scrape. `ends` writes a NaN after the last scrape: Prometheus marks a vanished series stale, which
    OpenMetrics cannot express, and a NaN ends it for the source the same way.
    """

    labels: dict[str, str]
    times: FloatArray
    cpu: FloatArray
    ram: FloatArray
    started: float
    restarts: Sequence[float] = ()
    ooms: Sequence[float] = ()
    ends: bool = False
    lifecycle: bool = True
    counter_base: float = 5000.0

    def samples(self) -> dict[str, FloatArray]:
        cpu_total = np.empty(self.times.size)
        start_time = np.empty(self.times.size)
        oom_total = np.empty(self.times.size)
        counter, started, ooms = self.counter_base, self.started, 0.0
        for i, t in enumerate(self.times):
            before = self.times[i - 1] if i else -math.inf
            restarted = [r for r in self.restarts if before < r <= t]
            if restarted:
                started, counter, ooms = restarted[-1], self.cpu[i] * (t - restarted[-1]), 0.0
            elif i:
                counter += self.cpu[i] * (t - before)
            ooms += sum(1 for o in self.ooms if before < o <= t)
            cpu_total[i], start_time[i], oom_total[i] = counter, started, ooms
        series = {CPU: cpu_total, RAM: self.ram}
        if self.lifecycle:
            series |= {START: start_time, OOM: oom_total}
        return series


def scrapes(start: float, end: float, every: float) -> FloatArray:
    return np.asarray(np.arange(round((end - start) / every) + 1) * every + start, np.float64)


def _labels(labels: dict[str, str]) -> str:
    escaped = (f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
               for k, v in sorted(labels.items()))
    return "{" + ",".join(escaped) + "}"


def openmetrics(containers: Iterable[Container]) -> str:
    """The exposition text of every container, one metric family after another as OpenMetrics requires."""
    per_container = [(c, c.samples()) for c in containers]
    lines: list[str] = []
    for metric in (CPU, RAM, START, OOM):
        for container, series in per_container:
            if metric not in series:
                continue
            labels = _labels({**container.labels, "cpu": "total"} if metric == CPU else container.labels)
            values = series[metric]
            lines += [f"{metric}{labels} {float(v)!r} {t:.3f}" for t, v in zip(container.times, values, strict=True)]
            if container.ends:
                lines.append(f"{metric}{labels} NaN {container.times[-1] + 1:.3f}")
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def backfill(promtool: str, text: str, tsdb: Path) -> None:
    source = tsdb.with_suffix(".om")
    source.write_text(text, encoding="utf-8")
    done = subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(tsdb)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"promtool could not backfill {source}: {done.stderr.strip()}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PrometheusServer:
    """`prometheus` serving a TSDB on a free loopback port, with no scrape targets of its own."""

    def __init__(self, binary: str, tsdb: Path, *extra_args: str) -> None:
        self.binary, self.tsdb, self.extra_args = binary, tsdb, extra_args
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log = tsdb.with_suffix(".log")

    def __enter__(self) -> PrometheusServer:
        config = self.tsdb.with_suffix(".yml")
        config.write_text("global:\n  scrape_interval: 10s\n", encoding="utf-8")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        with self._log.open("wb") as log:
            self._process = subprocess.Popen(
                [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.tsdb}",
                 f"--web.listen-address=127.0.0.1:{port}",
                 # The backfilled series lie in the past; the default 15 d retention would delete them.
                 "--storage.tsdb.retention.time=100y", *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self._log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError(f"prometheus not ready after 30s: {self._log.read_text(errors='replace')[-2000:]}")

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@dataclass
class Proxy:
    """A loopback HTTP proxy in front of Prometheus that records every API request's form, can demand an
    Authorization header, and can answer a fixed HTTP status instead of forwarding."""

    upstream: str
    require: str | None = None
    status: int | None = None
    requests: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    def __enter__(self) -> Proxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._forward(b"")

            def do_POST(self) -> None:
                self._forward(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

            def _forward(self, body: bytes) -> None:
                query = urllib.parse.urlsplit(self.path).query
                proxy.requests.append(dict(urllib.parse.parse_qsl(body.decode() or query)))
                if proxy.require is not None and self.headers.get("Authorization") != proxy.require:
                    self._answer(401, b"Unauthorized\n", "text/plain")
                elif proxy.status is not None:
                    self._answer(proxy.status, b"<html><body>upstream trouble</body></html>", "text/html")
                else:
                    request = urllib.request.Request(proxy.upstream + self.path, data=body or None,
                                                     method=self.command,
                                                     headers={"Content-Type": self.headers.get("Content-Type", "")})
                    try:
                        with urllib.request.urlopen(request, timeout=30) as response:
                            self._answer(response.status, response.read(), response.headers["Content-Type"])
                    except urllib.error.HTTPError as exc:
                        self._answer(exc.code, exc.read(), exc.headers["Content-Type"])

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
