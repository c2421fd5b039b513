"""A past window from Prometheus: cAdvisor's container series, one range query per metric for the whole stack.

Each query step becomes a round. Per container (one series of each metric, told apart by the service,
instance, `id` and scrape `instance` labels):

- CPU: ``rate(container_cpu_usage_seconds_total[2 x step])``. Twice the step so that every step holds two
  scrapes whenever the scrape interval is at most the step; a window of one step often holds a single scrape
  and yields nothing.
- RAM: ``container_memory_working_set_bytes`` at the step, what docker stats shows.
- Restarts: ``container_start_time_seconds`` changing within a series; a new series of a service that
  replaces one that ended is a recreation.
- OOM kills: increases of ``container_oom_events_total`` between steps, reset-aware. Counted here from the
  values at the steps rather than with ``increase()``, whose extrapolation yields fractions.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import os
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from typing import IO, Any

import numpy as np

from ..budgets import Budgets
from ..errors import K2InputError
from ..options import Settings
from ..units import format_duration
from ..window import Event, FloatArray, Gap, Window

DEFAULT_STEP = 15.0
# Prometheus refuses a range query that would return more points than this for one series.
MAX_POINTS = 11_000
TIMEOUT = 60.0

CPU = "container_cpu_usage_seconds_total"
RAM = "container_memory_working_set_bytes"
START = "container_start_time_seconds"
OOM = "container_oom_events_total"

TOKEN_ENV = "K2_PROMETHEUS_TOKEN"
USER_ENV = "K2_PROMETHEUS_USER"
PASSWORD_ENV = "K2_PROMETHEUS_PASSWORD"

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Labels that tell one container's series from another's: besides service and instance, cAdvisor's cgroup
# path (a new one on every recreation, and on every Kubernetes container restart) and the scraped host.
_ID_LABEL = "id"
_HOST_LABEL = "instance"

_HEX_ID = re.compile(r"[0-9a-f]{64}")

_Key = tuple[str, str, str, str]


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask: the base URL without credentials, the headers that carry them, and the secrets
    every message is scrubbed of."""

    base: str
    shown: str
    headers: Mapping[str, str]
    secrets: tuple[str, ...]

    def redact(self, text: str) -> str:
        return _scrub(text, self.secrets)


def endpoint(url: str, environ: Mapping[str, str]) -> Endpoint:
    """Credentials from the environment (bearer token, else user and password), else from the URL itself."""
    expected = "--k2-prometheus-url: expected an http(s) URL such as http://prometheus:9090"
    try:
        parts = urllib.parse.urlsplit(url.strip())
        _ = parts.port  # a port that is not a number raises here, not in the middle of a query
    except ValueError:
        raise K2InputError(f"{expected}, got a URL that does not parse: {_scrub_userinfo(url)!r}") from None
    secrets = [s for s in (parts.password, parts.username) if s]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        # Without a scheme urlsplit finds no user info to hide: hide anything before an `@` whatever it is.
        raise K2InputError(f"{expected}, got {_scrub_userinfo(url.strip())!r}")
    headers: dict[str, str] = {"Accept": "application/json"}
    user, password = parts.username, parts.password
    token = environ.get(TOKEN_ENV)
    if environ.get(USER_ENV) or environ.get(PASSWORD_ENV):
        if not (environ.get(USER_ENV) and environ.get(PASSWORD_ENV)):
            raise K2InputError(f"{USER_ENV} and {PASSWORD_ENV} go together; set both (or {TOKEN_ENV})")
        user, password = environ[USER_ENV], environ[PASSWORD_ENV]
    if token:
        headers["Authorization"] = f"Bearer {token}"
        secrets.append(token)
    elif user is not None:
        pair = f"{urllib.parse.unquote(user)}:{urllib.parse.unquote(password or '')}"
        encoded = base64.b64encode(pair.encode()).decode()
        headers["Authorization"] = f"Basic {encoded}"
        secrets += [s for s in (user, password, encoded) if s]
    base = _strip_userinfo(parts, "").rstrip("/")
    shown = _strip_userinfo(parts, "***@" if parts.username or parts.password else "").rstrip("/")
    return Endpoint(base, shown, headers, tuple(set(secrets)))


def _scrub_userinfo(url: str) -> str:
    """A URL too broken to split, with anything before an `@` hidden: it may be credentials."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    return scheme + sep + ("***@" + rest.rpartition("@")[2] if "@" in rest else rest)


def _strip_userinfo(parts: urllib.parse.SplitResult, replacement: str) -> str:
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=replacement + host))


def _scrub(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a password containing the user name is not half-replaced.
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect (a login page, another host) would carry the credentials elsewhere: it is reported instead."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Message, newurl: str) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def query_range(ep: Endpoint, query: str, start_ms: int, end_ms: int, step_ms: int) -> dict[str, Any]:
    """One /api/v1/query_range call; every failure becomes a one-line K2InputError without secrets."""
    form = urllib.parse.urlencode({
        "query": query, "start": f"{start_ms / 1000:.3f}", "end": f"{end_ms / 1000:.3f}",
        "step": f"{step_ms / 1000:.3f}",
    }).encode()
    request = urllib.request.Request(
        ep.base + "/api/v1/query_range", data=form, method="POST",
        headers={**ep.headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    try:
        with _OPENER.open(request, timeout=TIMEOUT) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise _http_error(ep, exc, query) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException, ValueError) as exc:
        # HTTPException: something that is not an HTTP server answered; ValueError: a URL urllib refuses.
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, (socket.timeout, TimeoutError)):
            reason = f"no answer within {TIMEOUT:.0f}s"
        raise K2InputError(ep.redact(f"cannot reach Prometheus at {ep.shown}: {reason}")) from None
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if not isinstance(payload, dict) or payload.get("status") not in ("success", "error"):
        raise K2InputError(ep.redact(f"{ep.shown} did not answer as the Prometheus HTTP API does (expected JSON "
                                     f"from /api/v1/query_range); is it the Prometheus base URL?"))
    if payload["status"] != "success":
        raise _api_error(ep, None, payload, query)
    data = payload.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("result"), list):
        raise K2InputError(ep.redact(f"{ep.shown} answered a range query without data.result; is it the "
                                     "Prometheus base URL?"))
    return payload


def _http_error(ep: Endpoint, exc: urllib.error.HTTPError, query: str) -> K2InputError:
    status = f"HTTP {exc.code} {exc.reason}"
    if exc.code in (401, 403):
        sent = ("the credentials sent were refused" if "Authorization" in ep.headers
                else f"no credentials were sent; set {TOKEN_ENV} or {USER_ENV}/{PASSWORD_ENV}")
        return K2InputError(ep.redact(f"Prometheus at {ep.shown} refused access ({status}): {sent}"))
    if 300 <= exc.code < 400:
        return K2InputError(ep.redact(f"Prometheus at {ep.shown} answered {status} to {exc.headers.get('Location')}, "
                                      "not followed; give the Prometheus base URL itself"))
    body = exc.read()
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("status") == "error":
        return _api_error(ep, exc.code, payload, query)
    snippet = " ".join(body.decode("utf-8", "replace").split())[:200]
    return K2InputError(ep.redact(f"Prometheus at {ep.shown} answered {status}" + (f": {snippet}" if snippet else "")))


def _api_error(ep: Endpoint, status: int | None, payload: dict[str, Any], query: str) -> K2InputError:
    http = f"HTTP {status}, " if status is not None else ""
    return K2InputError(ep.redact(
        f"Prometheus at {ep.shown} rejected the query ({http}{payload.get('errorType', 'error')}: "
        f"{payload.get('error', 'no reason given')}); query: {query}"
    ))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


@dataclass
class _Plan:
    """The stack's selector, the per-container grouping and the step grid, all in whole milliseconds
    (Prometheus's own resolution), so step times never drift."""

    selector: str
    by: tuple[str, ...]
    service_label: str
    instance_label: str
    start_ms: int
    step_ms: int
    points: int
    columns: dict[str, dict[_Key, FloatArray]] = field(default_factory=dict)

    def query(self, metric: str) -> str:
        by = ", ".join(self.by)
        if metric == CPU:
            return f"sum by ({by}) (rate({CPU}{self.selector}[{2 * self.step_ms}ms]))"
        return f"max by ({by}) ({metric}{self.selector})"

    def key(self, labels: Mapping[str, str]) -> _Key:
        return (labels.get(self.service_label, ""), labels.get(self.instance_label, ""),
                labels.get(_ID_LABEL, ""), labels.get(_HOST_LABEL, ""))

    def fetch(self, ep: Endpoint, metric: str, warnings: list[str]) -> None:
        """The metric for the whole stack, in as few range queries as the points limit allows."""
        column = self.columns.setdefault(metric, {})
        query = self.query(metric)
        for first in range(0, self.points, MAX_POINTS):
            last = min(first + MAX_POINTS, self.points) - 1
            payload = query_range(ep, query, self.start_ms + first * self.step_ms,
                                  self.start_ms + last * self.step_ms, self.step_ms)
            warnings.extend(ep.redact(f"Prometheus: {w}") for w in payload.get("warnings", []))
            for series in payload["data"]["result"]:
                values = series["values"]
                if not values:
                    continue
                times = np.fromiter((float(v[0]) for v in values), np.float64, len(values))
                figures = np.fromiter((float(v[1]) for v in values), np.float64, len(values))
                steps = np.rint((times * 1000 - self.start_ms) / self.step_ms).astype(np.int64)
                key = self.key(series["metric"])
                target = column.get(key)
                if target is None:
                    target = column[key] = np.full(self.points, math.nan)
                inside = (steps >= 0) & (steps < self.points)
                target[steps[inside]] = figures[inside]


def load_prometheus(budgets: Budgets, settings: Settings) -> Window:
    """The stack's window between settings.window_start and settings.window_end, from cAdvisor series."""
    if settings.prometheus_url is None or settings.window_start is None or settings.window_end is None:
        raise K2InputError("--k2-source=prometheus needs --k2-prometheus-url and a window")
    ep = endpoint(settings.prometheus_url, os.environ)
    for option, name in (("--k2-service-label", settings.service_label),
                         ("--k2-project-label", settings.project_label),
                         ("--k2-instance-label", settings.instance_label)):
        if not _LABEL_NAME.match(name):
            raise K2InputError(f"{option}: expected a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*), got {name!r}")
    step = settings.interval if settings.interval is not None else DEFAULT_STEP
    step_ms = max(round(step * 1000), 1)
    start_ms = round(settings.window_start * 1000)
    end_ms = round(settings.window_end * 1000)
    project = settings.compose_project or budgets.compose_project
    matchers = [f'{settings.service_label}!=""']
    if project:
        matchers.append(f'{settings.project_label}="{_escape(project)}"')
    plan = _Plan(
        selector="{" + ",".join(matchers) + "}",
        by=tuple(dict.fromkeys((settings.service_label, settings.instance_label, _ID_LABEL, _HOST_LABEL))),
        service_label=settings.service_label,
        instance_label=settings.instance_label,
        start_ms=start_ms,
        step_ms=step_ms,
        points=(end_ms - start_ms) // step_ms + 1,
    )
    window = Window(source=f"prometheus {ep.shown}", interval=step_ms / 1000,
                    planned=(end_ms - start_ms) / 1000)
    for metric in (CPU, RAM, START, OOM):
        plan.fetch(ep, metric, window.warnings)
    where = f"between {_rfc3339(settings.window_start)} and {_rfc3339(settings.window_end)}"
    if not plan.columns[RAM]:
        raise K2InputError(ep.redact(
            f"Prometheus at {ep.shown} has no series matching {RAM}{plan.selector} {where}; check the project, "
            "--k2-service-label and --k2-project-label, and that cAdvisor is scraped"))
    if not plan.columns[CPU]:
        raise K2InputError(ep.redact(
            f"Prometheus at {ep.shown} has {RAM} but no {plan.query(CPU)} {where}: a rate needs two scrapes "
            f"within {format_duration(2 * step_ms / 1000)}; set --k2-interval to at least the scrape interval"))
    missing = [m for m in (START, OOM) if not plan.columns[m]]
    if missing:
        window.restarts_unobservable = (
            f"Prometheus has no {' or '.join(missing)} series for the stack ({plan.selector}), so restarts and "
            "OOM kills cannot be seen"
        )
    _fill(window, plan)
    return window


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def _fill(window: Window, plan: _Plan) -> None:
    cpu, ram = plan.columns[CPU], plan.columns[RAM]
    blank = np.full(plan.points, math.nan)
    present = {k: ~np.isnan(cpu.get(k, blank)) | ~np.isnan(ram.get(k, blank)) for k in dict.fromkeys([*cpu, *ram])}
    present = {k: p for k, p in present.items() if p.any()}
    if not present:
        raise K2InputError(f"Prometheus holds series for {plan.selector} but no sample inside the window")
    steps = np.flatnonzero(np.logical_or.reduce(list(present.values())))
    times = (plan.start_ms + steps * plan.step_ms) / 1000
    first_round = window.add_rounds(times)
    round_of = np.full(plan.points, -1, np.int64)
    round_of[steps] = first_round + np.arange(steps.size)
    for i in np.flatnonzero(np.diff(steps) > 1):
        window.add_gap(Gap(_time(plan, int(steps[i])), _time(plan, int(steps[i + 1])),
                           "Prometheus holds no sample of the stack"))

    spans = {k: (int(np.argmax(p)), int(p.size - 1 - np.argmax(p[::-1]))) for k, p in present.items()}
    order = sorted(present, key=lambda k: (spans[k][0], k))
    names: dict[_Key, str] = {}
    for key in order:
        service, instance, _, _ = key
        cid = _container_id(key)
        names[key] = instance or cid
        container = window.add_container(cid, names[key], service)
        mask = present[key]
        window.extend(container.key, round_of[mask], cpu.get(key, blank)[mask], ram.get(key, blank)[mask])

    first_step, last_step = int(steps[0]), int(steps[-1])
    for key in order:
        _restarts(window, plan, key, names[key])
        _ooms(window, plan, key, names[key], appeared=spans[key][0] > first_step)
    _recreations(window, plan, order, names, spans, first_step, last_step)
    window.events.sort(key=lambda e: e.time)


def _time(plan: _Plan, step: int) -> float:
    return (plan.start_ms + step * plan.step_ms) / 1000


def _restarts(window: Window, plan: _Plan, key: _Key, name: str) -> None:
    starts = plan.columns[START].get(key)
    if starts is None:
        return
    valid = np.flatnonzero(~np.isnan(starts))
    values = starts[valid]
    for i in np.flatnonzero(np.abs(np.diff(values)) > 1e-3) + 1:
        seen = _time(plan, int(valid[i]))
        # The new start time itself, unless clocks disagree so much that it is not plausible.
        at = float(values[i]) if values[i - 1] < values[i] <= seen else seen
        window.add_event(Event(at, "restart", name, key[0], f"{name} started again"))


def _ooms(window: Window, plan: _Plan, key: _Key, name: str, *, appeared: bool) -> None:
    counter = plan.columns[OOM].get(key)
    if counter is None:
        return
    valid = np.flatnonzero(~np.isnan(counter))
    if valid.size == 0:
        return
    values = counter[valid]
    increase = np.diff(values)
    # A counter that went down was reset (the container's cgroup was created anew): it counts from zero.
    increase = np.where(increase < 0, values[1:], increase)
    # A container that appeared during the window started its counter inside it.
    first = values[0] if appeared else 0.0
    for step, count in zip(valid, np.concatenate(([first], increase)), strict=True):
        for _ in range(round(float(count))):
            window.add_event(Event(_time(plan, int(step)), "oom_kill", name, key[0],
                                   f"{name}: {OOM} rose within the {format_duration(plan.step_ms / 1000)} "
                                   "before"))


def _recreations(window: Window, plan: _Plan, order: list[_Key], names: Mapping[_Key, str],
                 spans: Mapping[_Key, tuple[int, int]], first_step: int, last_step: int) -> None:
    """A container that appears during the window replacing one of its service that ended is a recreation;
    one that appears with no such partner is a scale-up, one that ends without one a removal."""
    for service in dict.fromkeys(k[0] for k in order):
        members = [k for k in order if k[0] == service]
        ended = sorted((k for k in members if spans[k][1] < last_step), key=lambda k: spans[k][1])
        for key in (k for k in members if spans[k][0] > first_step):
            at = _started(plan, key, spans[key][0])
            if ended:
                old = ended.pop(0)
                window.add_event(Event(at, "recreate", names[key], service,
                                       f"{names[key]} ({_short(key)}) replaces {names[old]} ({_short(old)})"))
            else:
                window.add_event(Event(at, "start", names[key], service, f"{names[key]} appeared"))
        for old in ended:
            window.add_event(Event(_time(plan, spans[old][1]), "destroy", names[old], service,
                                   f"{names[old]} has no samples after this"))


def _started(plan: _Plan, key: _Key, first_present: int) -> float:
    """When a container appearing mid-window started: its start time if Prometheus has it, else its first step."""
    starts = plan.columns[START].get(key)
    if starts is not None:
        valid = starts[~np.isnan(starts)]
        if valid.size and _time(plan, 0) <= valid[0] <= _time(plan, first_present):
            return float(valid[0])
    return _time(plan, first_present)


def _short(key: _Key) -> str:
    return _container_id(key)[:12]


def _container_id(key: _Key) -> str:
    """The container id inside cAdvisor's cgroup path (`/docker/<id>`, `/kubepods/.../<id>`,
    `/system.slice/docker-<id>.scope`), else the path's last part, else the instance."""
    match = _HEX_ID.search(key[2])
    if match:
        return match.group(0)
    return key[2].rstrip("/").rpartition("/")[2] or key[1]
