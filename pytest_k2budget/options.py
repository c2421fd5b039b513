"""Command-line options, their ini mirrors, and the typed settings a run resolves them to."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from .errors import K2InputError
from .units import parse_duration

COMPOSE_SERVICE_LABEL = "container_label_com_docker_compose_service"
COMPOSE_PROJECT_LABEL = "container_label_com_docker_compose_project"
INSTANCE_LABEL = "name"


# (option, ini name, kind, default, help); kind: "path", "duration", "string", "bool".
_OPTIONS: tuple[tuple[str, str, str, str | None, str], ...] = (
    ("--k2-budgets", "k2_budgets", "path", None,
     "budgets file (default: budgets.yml in the rootdir)"),
    ("--k2-burn-in", "k2_burn_in", "duration", None,
     "sample the live stack for DURATION (90s, 15m, 24h, 1h30m, 2d), then judge every budget"),
    ("--k2-interval", "k2_interval", "duration", None,
     "time between sampling rounds (default 1s live, 15s from Prometheus)"),
    ("--k2-compose-project", "k2_compose_project", "string", None,
     "only containers of this compose project (default: stack.compose_project)"),
    ("--k2-record", "k2_record", "path", None,
     "recording of a live run (default: .k2budget/burn-in-<UTC time>.jsonl under the rootdir)"),
    ("--k2-fail-fast", "k2_fail_fast", "bool", "false",
     "end the window as soon as a verdict can no longer change"),
    ("--k2-replay", "k2_replay", "path", None,
     "judge a recorded run: the step doc's docker stats CSV or a k2budget recording"),
    ("--k2-replay-interval", "k2_replay_interval", "duration", "5m",
     "time between rounds of a docker stats CSV, which has no timestamps (default 5m)"),
    ("--k2-results-md", "k2_results_md", "path", None,
     "write the step doc's Results section (Markdown) to PATH"),
    ("--k2-update-doc", "k2_update_doc", "path", None,
     "rewrite the Results section of the step doc at PATH in place"),
    ("--k2-source", "k2_source", "string", "docker",
     "where a live window comes from: docker (sample now) or prometheus (judge a past window)"),
    ("--k2-prometheus-url", "k2_prometheus_url", "string", None,
     "Prometheus base URL; auth from K2_PROMETHEUS_TOKEN or K2_PROMETHEUS_USER/K2_PROMETHEUS_PASSWORD"),
    ("--k2-window", "k2_window", "duration", None,
     "with --k2-source=prometheus: judge the DURATION ending now"),
    ("--k2-window-start", "k2_window_start", "string", None, "window start, RFC 3339"),
    ("--k2-window-end", "k2_window_end", "string", None, "window end, RFC 3339 (default: now)"),
    ("--k2-service-label", "k2_service_label", "string", COMPOSE_SERVICE_LABEL,
     "Prometheus label naming a container's service (Kubernetes: container)"),
    ("--k2-project-label", "k2_project_label", "string", COMPOSE_PROJECT_LABEL,
     "Prometheus label naming a container's project (Kubernetes: namespace)"),
    ("--k2-instance-label", "k2_instance_label", "string", INSTANCE_LABEL,
     "Prometheus label telling replicas apart (Kubernetes: pod)"),
)

Mode = Literal["off", "live", "replay", "prometheus"]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("k2budget", "resource budgets (pytest-k2budget)")
    for option, ini, kind, default, help_text in _OPTIONS:
        dest = ini
        if kind == "bool":
            group.addoption(option, action="store_true", default=None, dest=dest, help=help_text)
            parser.addini(ini, help_text, type="bool", default=default == "true")
        else:
            group.addoption(option, action="store", default=None, dest=dest, metavar=kind.upper(),
                            help=help_text)
            parser.addini(ini, help_text, default=default)


@dataclass(frozen=True)
class Settings:
    """A run's options, resolved; the defaults are the options' own."""

    mode: Mode
    budgets_path: Path
    burn_in: float | None = None
    interval: float | None = None
    compose_project: str | None = None
    record_path: Path = Path(".k2budget", "burn-in.jsonl")
    fail_fast: bool = False
    replay_path: Path | None = None
    replay_interval: float = 300.0
    results_md: Path | None = None
    update_doc: Path | None = None
    prometheus_url: str | None = None
    window: float | None = None
    window_start: float | None = None
    window_end: float | None = None
    service_label: str = COMPOSE_SERVICE_LABEL
    project_label: str = COMPOSE_PROJECT_LABEL
    instance_label: str = INSTANCE_LABEL


def _raw(config: pytest.Config, ini: str) -> tuple[object, str]:
    """The CLI value if given, else the ini value, with where it came from for error messages."""
    value = config.getoption(ini)
    if value is not None:
        return value, "--" + ini.replace("_", "-")
    return config.getini(ini), f"ini option {ini}"


def _text(config: pytest.Config, ini: str) -> str | None:
    value, _ = _raw(config, ini)
    if value is None or value == "":
        return None
    return str(value).strip()


def _duration(config: pytest.Config, ini: str) -> float | None:
    value, origin = _raw(config, ini)
    if value is None or value == "":
        return None
    try:
        return parse_duration(str(value))
    except ValueError as exc:
        raise K2InputError(f"{origin}: expected {exc}, got {value!r}") from None


def _path(config: pytest.Config, ini: str) -> Path | None:
    """A path option: relative to where pytest was started on the command line, to the ini file in it."""
    text = _text(config, ini)
    if text is None:
        return None
    path = Path(text).expanduser()
    if path.is_absolute():
        return path
    from_cli = config.getoption(ini) is not None
    base = config.invocation_params.dir if from_cli or config.inipath is None else config.inipath.parent
    return base / path


def parse_rfc3339(text: str, origin: str) -> float:
    from datetime import datetime, timezone

    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise K2InputError(f"{origin}: expected an RFC 3339 time such as 2026-12-03T00:00:00Z, "
                           f"got {text!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def resolve(config: pytest.Config) -> Settings:
    """Every option resolved and checked; raises K2InputError naming the option and what was expected."""
    burn_in = _duration(config, "k2_burn_in")
    replay = _path(config, "k2_replay")
    source = (_text(config, "k2_source") or "docker").lower()
    if source not in ("docker", "prometheus"):
        raise K2InputError(f"--k2-source: expected docker or prometheus, got {source!r}")
    window = _duration(config, "k2_window")
    start_text, end_text = _text(config, "k2_window_start"), _text(config, "k2_window_end")
    start = parse_rfc3339(start_text, "--k2-window-start") if start_text else None
    end = parse_rfc3339(end_text, "--k2-window-end") if end_text else None

    mode: Mode = "off"
    if replay is not None:
        mode = "replay"
    if source == "prometheus":
        if mode == "replay":
            raise K2InputError("--k2-replay and --k2-source=prometheus exclude each other; choose one")
        mode = "prometheus"
    if burn_in is not None:
        if mode == "replay":
            raise K2InputError("--k2-burn-in and --k2-replay exclude each other: sample live or replay, not both")
        if mode == "prometheus":
            raise K2InputError("--k2-burn-in samples live; with --k2-source=prometheus use --k2-window "
                               "or --k2-window-start/--k2-window-end")
        mode = "live"
    if mode == "prometheus":
        if _text(config, "k2_prometheus_url") is None:
            raise K2InputError("--k2-source=prometheus needs --k2-prometheus-url (or ini k2_prometheus_url)")
        if window is not None and start is not None:
            raise K2InputError("--k2-window and --k2-window-start exclude each other; give one")
        if window is None and start is None:
            raise K2InputError("--k2-source=prometheus needs --k2-window=DURATION or --k2-window-start")
        if end is None:
            end = time.time()
        if start is None:
            assert window is not None
            start = end - window
        if start >= end:
            raise K2InputError("--k2-window-start must be before --k2-window-end")

    budgets_path = _path(config, "k2_budgets") or config.rootpath / "budgets.yml"
    record = _path(config, "k2_record") or config.rootpath / ".k2budget" / time.strftime(
        "burn-in-%Y%m%dT%H%M%SZ.jsonl", time.gmtime()
    )
    replay_interval = _duration(config, "k2_replay_interval")
    assert replay_interval is not None  # the ini default
    fail_fast_cli = config.getoption("k2_fail_fast")
    return Settings(
        mode=mode,
        budgets_path=budgets_path,
        burn_in=burn_in,
        interval=_duration(config, "k2_interval"),
        compose_project=_text(config, "k2_compose_project"),
        record_path=record,
        fail_fast=bool(fail_fast_cli if fail_fast_cli is not None else config.getini("k2_fail_fast")),
        replay_path=replay,
        replay_interval=replay_interval,
        results_md=_path(config, "k2_results_md"),
        update_doc=_path(config, "k2_update_doc"),
        prometheus_url=_text(config, "k2_prometheus_url"),
        window=window,
        window_start=start,
        window_end=end,
        service_label=_text(config, "k2_service_label") or COMPOSE_SERVICE_LABEL,
        project_label=_text(config, "k2_project_label") or COMPOSE_PROJECT_LABEL,
        instance_label=_text(config, "k2_instance_label") or INSTANCE_LABEL,
    )
