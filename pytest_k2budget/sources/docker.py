"""The live source: a running stack watched through the Docker Engine, round by round, into a recorded window.

Only read endpoints of the Engine API are called: version, containers list, inspect, stats and events.

- Discovery: containers labelled `com.docker.compose.project=<project>`, their service from
  `com.docker.compose.service`; unlabelled containers by name (`naming.service_for_name`). New containers
  are found from their start events; the list is read again after the event stream drops, after an outage,
  and every `_RELIST_EVERY` seconds in case the stream missed one.
- Sampling: every container every interval. On the Docker host the cgroup files are read directly
  (`cgroups.CgroupReader`); elsewhere all containers' one-shot stats calls run concurrently, so a round costs
  about one API round trip. CPU is the cumulative counter differenced over the reads' own timestamps, so a
  sample is the exact average number of cores over its interval; a priming read before the first round makes
  the first round's CPU known too.
- Lifecycle: the event stream (die with exit code, oom, start, destroy) followed from the window's start and
  resumed with `since=` after a drop, cross-checked with `RestartCount`/`OOMKilled` from inspect at the end
  and with the cgroup `oom_kill` counter. A container started after it died is a restart; a new container of
  a service whose container was destroyed is a recreation.
- A daemon that drops mid-window is retried with backoff; the rounds it could not serve become a gap.
- Ctrl-C or SIGTERM ends sampling; the window is judged and marked interrupted.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import FrameType
from typing import Any, Literal

import docker
import docker.errors
import requests

from .. import options
from ..budgets import Budgets
from ..errors import K2InputError
from ..failfast import FailFastTracker
from ..naming import service_for_name
from ..progress import Progress, Status
from ..recording import Recorder
from ..window import TOTAL, Container, Event, EventKind, Gap, Window
from .cgroups import CgroupPaths, CgroupReader, Reading, parse_api_time, reading_from_stats

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
DEFAULT_INTERVAL = 1.0
DEFAULT_SOCKET = "unix:///var/run/docker.sock"

Sampler = Literal["auto", "api", "cgroup"]

_RELIST_EVERY = 30.0
_API_TIMEOUT = 10
_MAX_BACKOFF = 30.0
_WORKERS = 32


class _DaemonDown(Exception):
    """The Engine did not answer: the round cannot be served through the API."""


def _daemon_errors(exc: BaseException) -> bool:
    if isinstance(exc, (_DaemonDown, requests.exceptions.RequestException)):
        return True
    return isinstance(exc, docker.errors.APIError) and exc.is_server_error()


def daemon_address() -> str:
    host = os.environ.get("DOCKER_HOST")
    return f"DOCKER_HOST={host}" if host else f"the socket {DEFAULT_SOCKET.removeprefix('unix://')}"


def connect() -> tuple[docker.DockerClient, str]:
    """A client and the API version the daemon speaks, or K2InputError naming the address tried."""
    try:
        client = docker.from_env(timeout=_API_TIMEOUT, max_pool_size=_WORKERS)
        version = client.api.version()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise K2InputError(f"--k2-burn-in: cannot reach the Docker daemon at {daemon_address()}: {first}; "
                           "start it, or point DOCKER_HOST at it") from None
    return client, str(version.get("ApiVersion", "1.41"))


def _api_at_least(version: str, wanted: tuple[int, int]) -> bool:
    try:
        major, minor = (int(p) for p in version.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= wanted


@dataclass
class _Tracked:
    """What the sampler knows of one container while it exists."""

    container: Container
    policy: str
    restart_count: int
    paths: CgroupPaths | None
    running: bool = True
    last: Reading | None = None
    exit_code: str | None = None
    restarts: int = 0
    oom_events: int = 0
    oom_counter: int = 0
    oom_recorded: int = 0
    counter_seen: int | None = None

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def service(self) -> str:
        return self.container.service


@dataclass
class _Events:
    """The event stream in a thread, resumed with `since=` after a drop; the sampler drains `queue`."""

    client: docker.DockerClient
    since: float
    stop: threading.Event
    queue: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    drops: int = 0
    _stream: Any = None
    _last_nano: int = 0
    _seen: deque[tuple[int, str, str]] = field(default_factory=lambda: deque(maxlen=256))

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name="k2budget-docker-events", daemon=True)
        thread.start()
        return thread

    def _run(self) -> None:
        backoff = 0.5
        while not self.stop.is_set():
            try:
                self._stream = self.client.api.events(since=self.since, filters={"type": "container"},
                                                      decode=True)
                backoff = 0.5
                for event in self._stream:
                    self._accept(event)
            except Exception:  # any failure of the stream is a drop, retried below
                pass
            if self.stop.is_set():
                return
            self.drops += 1
            self.stop.wait(backoff)
            backoff = min(backoff * 2, _MAX_BACKOFF)

    def _accept(self, event: dict[str, Any]) -> None:
        nano = int(event.get("timeNano") or int(event.get("time", 0)) * 10**9)
        key = (nano, str(event.get("id", "")), str(event.get("Action", "")))
        # Resuming with since= replays the events of the last second: skip those already queued.
        if nano < self._last_nano or key in self._seen:
            return
        self._seen.append(key)
        self._last_nano = nano
        self.since = nano / 1e9
        self.queue.put(event)

    def reconnect(self) -> None:
        """Drop the current stream (it may be a dead connection to a daemon that came back)."""
        stream = self._stream
        if stream is not None:
            # Closing a broken stream may fail; it is gone either way.
            with contextlib.suppress(Exception):
                stream.close()

    def drain(self) -> Iterator[dict[str, Any]]:
        while True:
            try:
                yield self.queue.get_nowait()
            except queue.Empty:
                return


class _Interrupt:
    """SIGINT/SIGTERM end sampling instead of the process; a second signal aborts as usual."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _Interrupt:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, _frame: FrameType | None) -> None:
        if self.reason is not None:
            self.__exit__()
            raise KeyboardInterrupt
        self.reason = f"interrupted by {signal.Signals(signum).name}"
        self.stop.set()

    def __exit__(self, *_exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()


class DockerSampler:
    """One burn-in: discovery, rounds, events and gaps, written through a Recorder."""

    def __init__(self, client: docker.DockerClient, api_version: str, budgets: Budgets, recorder: Recorder,
                 project: str | None, sampler: Sampler = "auto", reader: CgroupReader | None = None) -> None:
        self.client = client
        self.api = client.api
        self.budgets = budgets
        self.recorder = recorder
        self.window = recorder.window
        self.project = project
        self.one_shot = _api_at_least(api_version, (1, 41))
        self.reader = reader if reader is not None else CgroupReader()
        # A daemon reached over TCP runs elsewhere: this host's cgroups (and pids) are not its containers'.
        local = os.environ.get("DOCKER_HOST", DEFAULT_SOCKET).startswith("unix://")
        self.use_cgroups = sampler != "api" and self.reader.available and local
        if sampler == "cgroup" and not self.use_cgroups:
            raise K2InputError(f"cgroup files under {self.reader.root} are not readable here; sample through "
                               "the Docker API instead")
        self.tracked: dict[str, _Tracked] = {}
        self.vacated: dict[str, list[str]] = {}
        self._pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="k2budget-stats")
        self.next_list = 0.0
        self.needs_list = True

    # --- discovery ------------------------------------------------------------------------------

    def service_of(self, labels: Mapping[str, str], name: str) -> str | None:
        """The compose service of a container, or None when it is not part of the stack."""
        name = name.lstrip("/")
        project, service = labels.get(PROJECT_LABEL), labels.get(SERVICE_LABEL)
        if self.project is not None:
            if project is not None:
                if project != self.project:
                    return None
                return service or service_for_name(name, self.budgets.names, self.project)
            if not name.startswith((self.project + "-", self.project + "_")):
                return None
            return service_for_name(name, self.budgets.names, self.project)
        return service or service_for_name(name, self.budgets.names, project)

    def relist(self, now: float) -> None:
        """Follow containers that appeared or went away, whatever the event stream said."""
        listed = self.api.containers(all=False)
        running = set()
        for entry in listed:
            name = (entry.get("Names") or ["/" + entry["Id"][:12]])[0]
            if self.service_of(entry.get("Labels") or {}, name) is None:
                continue
            running.add(entry["Id"])
            tracked = self.tracked.get(entry["Id"])
            if tracked is None:
                self.discover(entry["Id"], now, initial=not self.window.rounds)
            elif not tracked.running:
                # Running again, and the stream never said so (its start event was lost): a restart all the same.
                self._restarted(now, tracked, "seen running again in the container list")
        for tracked in self.tracked.values():
            if tracked.container.id not in running:
                tracked.running = False
        self.needs_list = False
        self.next_list = time.monotonic() + _RELIST_EVERY

    def discover(self, container_id: str, now: float, *, initial: bool) -> _Tracked | None:
        try:
            info = self.api.inspect_container(container_id)
        except docker.errors.NotFound:
            return None
        name = str(info.get("Name", container_id[:12])).lstrip("/")
        service = self.service_of(info.get("Config", {}).get("Labels") or {}, name)
        if service is None:
            return None
        host = info.get("HostConfig", {})
        tracked = _Tracked(
            container=self.recorder.add_container(container_id, name, service),
            policy=str((host.get("RestartPolicy") or {}).get("Name") or "no"),
            restart_count=int(info.get("RestartCount", 0)),
            paths=self._locate(info),
            running=bool(info.get("State", {}).get("Running", False)),
        )
        self.tracked[container_id] = tracked
        if not initial:
            replaced = self.vacated.get(service)
            if replaced:
                self._event(now, "recreate", tracked,
                            f"new container {container_id[:12]} replacing {replaced.pop(0)} (removed)")
            else:
                self._event(now, "start", tracked, f"new container {container_id[:12]}")
        return tracked

    def _locate(self, info: Mapping[str, Any]) -> CgroupPaths | None:
        if not self.use_cgroups:
            return None
        pid = int(info.get("State", {}).get("Pid") or 0)
        parent = str(info.get("HostConfig", {}).get("CgroupParent") or "")
        return self.reader.locate(str(info["Id"]), pid or None, parent)

    # --- events ---------------------------------------------------------------------------------

    def _event(self, t: float, kind: EventKind, tracked: _Tracked, detail: str) -> None:
        self.recorder.add_event(Event(t, kind, tracked.name, tracked.service, detail))

    def on_event(self, raw: Mapping[str, Any]) -> None:
        action = str(raw.get("Action") or raw.get("status") or "")
        container_id = str(raw.get("id") or raw.get("Actor", {}).get("ID", ""))
        attributes = raw.get("Actor", {}).get("Attributes") or {}
        t = int(raw.get("timeNano") or 0) / 1e9 or float(raw.get("time", time.time()))
        tracked = self.tracked.get(container_id)
        if tracked is None:
            if action == "start" and self.service_of(attributes, str(attributes.get("name", ""))) is not None:
                self.discover(container_id, t, initial=False)
            return
        if action == "die":
            tracked.running = False
            tracked.exit_code = str(attributes.get("exitCode", "?"))
            self._event(t, "die", tracked, f"exit code {tracked.exit_code}")
        elif action == "oom":
            tracked.oom_events += 1
            self._record_oom(t, tracked, "killed by the kernel OOM killer")
        elif action == "start" and not tracked.running:
            self._restarted(t, tracked, "restarted by policy" if tracked.policy not in ("", "no") else "restarted")
        elif action == "destroy":
            tracked.running = False
            self.vacated.setdefault(tracked.service, []).append(tracked.name)
            self._event(t, "destroy", tracked, "container removed")
            del self.tracked[container_id]

    def _restarted(self, t: float, tracked: _Tracked, how: str) -> None:
        tracked.running = True
        tracked.restarts += 1
        tracked.last = None
        code = f"exit code {tracked.exit_code}, " if tracked.exit_code is not None else ""
        self._event(t, "restart", tracked, code + how)
        self._relocate(tracked)

    def _record_oom(self, t: float, tracked: _Tracked, detail: str) -> None:
        # The stream's oom events and the cgroup's oom_kill counter see the same kills: record the larger count.
        while max(tracked.oom_events, tracked.oom_counter) > tracked.oom_recorded:
            tracked.oom_recorded += 1
            self._event(t, "oom_kill", tracked, detail)

    def _relocate(self, tracked: _Tracked) -> None:
        if not self.use_cgroups:
            return
        try:
            tracked.paths = self._locate(self.api.inspect_container(tracked.container.id))
        except docker.errors.NotFound:
            tracked.paths = None
        tracked.counter_seen = None

    # --- sampling -------------------------------------------------------------------------------

    def _stats(self, container_id: str) -> Reading | None:
        try:
            if self.one_shot:
                stats = self.api.stats(container_id, stream=False, one_shot=True)
            else:
                stats = self.api.stats(container_id, stream=False)
        except docker.errors.APIError as exc:
            if exc.is_server_error():
                raise _DaemonDown(str(exc)) from None
            return None
        except requests.exceptions.RequestException as exc:
            raise _DaemonDown(str(exc)) from None
        return reading_from_stats(stats)

    def read_all(self) -> dict[str, Reading | None]:
        """One reading per running container: cgroup files where located, concurrent API calls otherwise."""
        running = [t for t in self.tracked.values() if t.running]
        readings: dict[str, Reading | None] = {}
        now = time.time()
        for tracked in running:
            if tracked.paths is not None:
                readings[tracked.container.id] = self.reader.read(tracked.paths, now)
        via_api = [t.container.id for t in running if t.paths is None]
        if via_api:
            for container_id, reading in zip(via_api, self._pool.map(self._stats, via_api), strict=True):
                readings[container_id] = reading
        return readings

    def prime(self) -> None:
        """A reading of every container before the first round, so the first round has a CPU figure."""
        for container_id, reading in self.read_all().items():
            if reading is not None:
                self.tracked[container_id].last = reading

    def samples(self, readings: Mapping[str, Reading | None], t: float) -> list[tuple[int, float, float]]:
        rows = []
        for container_id, reading in readings.items():
            tracked = self.tracked.get(container_id)
            if tracked is None or reading is None or (reading.cpu_ns is None and reading.ram is None):
                continue
            self._count_ooms(t, tracked, reading)
            rows.append((tracked.container.key, self._cpu(tracked, reading),
                         math.nan if reading.ram is None else float(reading.ram)))
        return rows

    @staticmethod
    def _cpu(tracked: _Tracked, reading: Reading) -> float:
        last, tracked.last = tracked.last, reading if reading.cpu_ns is not None else tracked.last
        if last is None or last.cpu_ns is None or reading.cpu_ns is None:
            return math.nan
        elapsed = reading.time - last.time
        used = reading.cpu_ns - last.cpu_ns
        # A restarted container has a fresh counter: no rate across the restart.
        if not elapsed > 0 or used < 0:
            return math.nan
        return used / 1e9 / elapsed

    def _count_ooms(self, t: float, tracked: _Tracked, reading: Reading) -> None:
        if reading.oom_kills is None:
            return
        seen = tracked.counter_seen
        tracked.counter_seen = reading.oom_kills
        if seen is not None and reading.oom_kills > seen:
            tracked.oom_counter += reading.oom_kills - seen
            self._record_oom(t, tracked, "killed by the kernel OOM killer (cgroup oom_kill counter)")

    # --- the end --------------------------------------------------------------------------------

    def reconcile(self, t: float) -> None:
        """What inspect says at the end that the event stream did not: restarts and an OOM kill."""
        for tracked in list(self.tracked.values()):
            try:
                info = self.api.inspect_container(tracked.container.id)
            except docker.errors.NotFound:
                continue
            missing = int(info.get("RestartCount", 0)) - tracked.restart_count - tracked.restarts
            for _ in range(max(missing, 0)):
                tracked.restarts += 1
                self._event(t, "restart", tracked,
                            f"RestartCount rose to {info.get('RestartCount')} without a start event seen")
            state = info.get("State", {})
            # OOMKilled describes the last exit, which may predate the window: only one inside it counts.
            last_exit = parse_api_time(str(state.get("FinishedAt", "")))
            started = self.window.started
            if state.get("OOMKilled") and tracked.oom_recorded == 0 and started is not None and last_exit >= started:
                tracked.oom_events += 1
                self._record_oom(t, tracked, "docker inspect shows OOMKilled")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def round_sums(window: Window, rows: list[tuple[int, float, float]]) -> dict[str, tuple[float, float]]:
    """Per-service and TOTAL sums of one round; NaN where a container of the round had no figure, since the
    sum is then unknown (as in Window.series)."""
    containers = window.containers
    sums: dict[str, list[float]] = {}
    for key, cpu, ram in rows:
        for name in (containers[key].service, TOTAL):
            acc = sums.setdefault(name, [0.0, 0.0])
            acc[0] += cpu
            acc[1] += ram
    return {name: (acc[0], acc[1]) for name, acc in sums.items()}


def run_burn_in(budgets: Budgets, settings: options.Settings, progress: Progress, *, sampler: Sampler = "auto",
                clock: Callable[[], float] = time.monotonic) -> Window:
    """Sample the stack for `settings.burn_in` seconds into a recorded window (judged by the caller)."""
    if settings.burn_in is None:
        raise K2InputError("--k2-burn-in: a live run needs a duration such as 2m or 24h")
    interval = settings.interval or DEFAULT_INTERVAL
    project = settings.compose_project or budgets.compose_project
    client, api_version = connect()
    window = Window(source="docker", interval=interval, planned=settings.burn_in)
    try:
        recorder = Recorder(window, settings.record_path)
    except K2InputError:
        client.close()
        raise
    stop = threading.Event()
    events = _Events(client, since=time.time(), stop=stop)
    source: DockerSampler | None = None
    try:
        source = DockerSampler(client, api_version, budgets, recorder, project, sampler)
        if not source.one_shot:
            recorder.warn(f"Docker API {api_version} has no one-shot stats (API >= 1.41): each stats call "
                          "waits for a second daemon sample; use an interval of 2s or more")
        planned_rounds = max(round(settings.burn_in / interval), 1)
        tracker = FailFastTracker(budgets, planned_rounds)
        with _Interrupt(stop) as interrupt:
            events.start()
            _sample(source, events, tracker, progress, settings, planned_rounds, stop, clock)
            window.interrupted = interrupt.reason is not None
            if interrupt.reason:
                window.stop_reason = interrupt.reason
            elif tracker.reason and settings.fail_fast:
                window.stop_reason = f"fail-fast: {tracker.reason}"
            try:
                for raw in events.drain():
                    source.on_event(raw)
                source.reconcile(time.time())
            except Exception as exc:
                if not _daemon_errors(exc):
                    raise
                recorder.warn(f"restarts at the end of the window not checked: Docker daemon unreachable: {exc}")
        outcome = window.stop_reason or "done"
        progress.finish(Status(window.covered, settings.burn_in, len(source.tracked), window.samples,
                               tracker.nearest()), outcome)
    finally:
        if source is not None:
            source.close()
        stop.set()
        events.reconnect()
        recorder.close()
        client.close()
    return window


def _sample(source: DockerSampler, events: _Events, tracker: FailFastTracker, progress: Progress,
            settings: options.Settings, planned_rounds: int, stop: threading.Event,
            clock: Callable[[], float]) -> None:
    window, recorder = source.window, source.recorder
    interval = window.interval
    assert settings.burn_in is not None
    try:
        source.relist(time.time())
        source.prime()
    except Exception as exc:
        if not _daemon_errors(exc):
            raise
        raise K2InputError(f"--k2-burn-in: the Docker daemon at {daemon_address()} stopped answering before the "
                           f"first round: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    start_wall, start = time.time(), clock()
    outage: _Outage | None = None
    drops_seen = 0
    fed = 0
    index = 1
    while index <= planned_rounds and not stop.is_set():
        if stop.wait(max(start + index * interval - clock(), 0.0)):
            break
        t = time.time()
        failure: BaseException | None = None
        readings: dict[str, Reading | None] | None = None
        try:
            for raw in events.drain():
                source.on_event(raw)
            if source.needs_list or events.drops > drops_seen or time.monotonic() >= source.next_list:
                drops_seen = events.drops
                source.relist(t)
        except Exception as exc:
            if not _daemon_errors(exc):
                raise
            failure = exc
        # Containers read from cgroup files need no daemon: only API-sampled ones make a round impossible.
        if failure is None or all(tr.paths is not None for tr in source.tracked.values() if tr.running):
            try:
                readings = source.read_all()
            except Exception as exc:
                if not _daemon_errors(exc):
                    raise
                failure = exc
        if failure is not None:
            if outage is None:
                outage = _Outage(window.ended if window.ended is not None else start_wall, failure)
            source.needs_list = True
        elif outage is not None:
            outage.end(recorder, t)
            outage = None
            events.reconnect()
        if readings is None:
            assert outage is not None
            outage.skipped = True
            # Skipped rounds are not made up: the round grid stays, the gap shows the hole.
            index = max(index + 1, math.ceil((clock() + outage.next_wait() - start) / interval))
            continue
        rows = source.samples(readings, t)
        recorder.add_round(t, rows)
        for event in window.events[fed:]:
            tracker.add_event(event)
        fed = len(window.events)
        tracker.add_round(t, round_sums(window, rows))
        progress.update(Status(t - start_wall + interval, settings.burn_in,
                               sum(1 for tr in source.tracked.values() if tr.running), window.samples,
                               tracker.nearest()))
        if settings.fail_fast and tracker.reason:
            break
        # A round slower than the interval skips the slots it overran: the window ends on time.
        index = max(index + 1, math.floor((clock() - start) / interval) + 1)


class _Outage:
    """The daemon stopped answering at `since` (the last round recorded before it)."""

    def __init__(self, since: float, failure: BaseException) -> None:
        self.since = since
        text = str(failure).splitlines()[0] if str(failure) else type(failure).__name__
        self.reason = f"Docker daemon unreachable at {daemon_address()}: {text[:200]}"
        self.skipped = False
        self._backoff = 1.0

    def next_wait(self) -> float:
        wait, self._backoff = self._backoff, min(self._backoff * 2, _MAX_BACKOFF)
        return wait

    def end(self, recorder: Recorder, t: float) -> None:
        if self.skipped:
            recorder.add_gap(Gap(self.since, t, self.reason))
        else:
            recorder.warn(f"{self.reason} for {t - self.since:.0f}s; containers were sampled from cgroup files "
                          "throughout and the event stream was resumed where it dropped")
