"""budgets.yml: parsed and validated into frozen dataclasses, every error located by file, line, service, key."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .errors import K2InputError
from .units import format_budget_size, parse_size

SUPPORTED_VERSIONS = (1,)
_TOP_KEYS = {"version", "stack", "defaults", "services"}
_STACK_KEYS = {"name", "compose_project", "total"}
_TOTAL_KEYS = {"cpu", "ram"}
_DEFAULT_KEYS = {"cpu_percentile", "spike_factor", "max_restarts"}
_SERVICE_KEYS = {"cpu", "ram", "notes"} | _DEFAULT_KEYS
# Compose's own rule for service names; it also keeps `::` (the node id separator) out of them.
_SERVICE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")

@dataclass(frozen=True)
class ServiceBudget:
    name: str
    cpu: float
    ram: int
    cpu_percentile: float = 99.0
    spike_factor: float = 2.0
    max_restarts: int = 0
    notes: str = ""
    line: int | None = None


@dataclass(frozen=True)
class Budgets:
    path: str
    stack_name: str
    compose_project: str | None
    services: tuple[ServiceBudget, ...]
    total_cpu: float
    total_ram: int
    warnings: tuple[str, ...] = ()
    default_cpu_percentile: float = 99.0
    # Where TOTAL's tests point: the declared `stack.total`, else the `services:` key.
    total_line: int | None = None

    def service(self, name: str) -> ServiceBudget:
        for budget in self.services:
            if budget.name == name:
                return budget
        raise KeyError(name)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.services)

    @property
    def total(self) -> ServiceBudget:
        """The stack total judged like a service: the defaults' percentile, no spike or restart rules."""
        return ServiceBudget("TOTAL", self.total_cpu, self.total_ram, cpu_percentile=self.default_cpu_percentile,
                             line=self.total_line)


class _Mapping(dict[str, Any]):
    """A YAML mapping that remembers where it and each of its keys stand."""

    line: int
    key_lines: dict[str, int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    explicit = sum(1 for key_node, _ in node.value if key_node.tag != "tag:yaml.org,2002:merge")
    loader.flatten_mapping(node)  # YAML merge keys (`<<: *defaults`), as the safe loader supports them
    merged = len(node.value) - explicit  # flatten_mapping puts the merged pairs first
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    from_merge: set[str] = set()
    for index, (key_node, value_node) in enumerate(node.value):
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            key = str(key)
        # A key given twice is a mistake; a key given over a merged one overrides it, as YAML means.
        if key in mapping and index >= merged and key not in from_merge:
            raise K2InputError(f"duplicate key {key!r}", line=key_node.start_mark.line + 1)
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_node.start_mark.line + 1
        if index < merged:
            from_merge.add(key)
        else:
            from_merge.discard(key)
    return mapping


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_budgets(path: str | Path) -> Budgets:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise K2InputError("budgets file not found", path=str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise K2InputError(f"cannot read budgets file: {exc}", path=str(p)) from None
    return parse_budgets(text, str(p))


def parse_budgets(text: str, path: str = "budgets.yml") -> Budgets:
    try:
        data = yaml.load(text, Loader=_Loader)
    except K2InputError as exc:
        raise K2InputError(exc.message, path=path, line=exc.line) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        context = ""
        if exc.context_mark is not None and exc.context:
            context = f"{exc.context} from line {exc.context_mark.line + 1}: "
            # An unclosed bracket is found only at the end of the file: point at where it was opened.
            if mark is None or "<stream end>" in (exc.problem or ""):
                mark = exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise K2InputError(f"YAML syntax error: {context}{exc.problem}", path=path, line=line) from None
    except yaml.YAMLError as exc:
        raise K2InputError(f"YAML error: {exc}", path=path) from None
    return _Parser(path).parse(data)


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, message: str, mapping: _Mapping | None, key: str | None = None,
              service: str | None = None) -> K2InputError:
        line = None
        if mapping is not None:
            line = mapping.key_lines.get(key, mapping.line) if key is not None else mapping.line
        return K2InputError(message, path=self.path, line=line, service=service, key=key)

    def check_keys(self, mapping: _Mapping, allowed: set[str], service: str | None = None,
                   section: str = "") -> None:
        for key in mapping:
            if key not in allowed:
                where = f"in {section}, " if section else ""
                raise self.error(
                    f"unknown key; expected {where}one of {', '.join(sorted(allowed))}", mapping, key, service
                )

    def mapping(self, value: Any, parent: _Mapping, key: str, service: str | None = None) -> _Mapping:
        if not isinstance(value, _Mapping):
            raise self.error(f"expected a mapping, got {_kind(value)}", parent, key, service)
        return value

    def number(self, mapping: _Mapping, key: str, service: str | None, *, low: float = 0.0,
               high: float | None = None, include_high: bool = True, what: str = "a number > 0") -> float:
        value = mapping[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(f"expected {what}, got {value!r}", mapping, key, service)
        too_high = high is not None and (value > high if include_high else value >= high)
        if value <= low or too_high:
            raise self.error(f"expected {what}, got {value!r}", mapping, key, service)
        return float(value)

    def size(self, mapping: _Mapping, key: str, service: str | None) -> int:
        value = mapping[key]
        try:
            return parse_size(value)
        except ValueError as exc:
            raise self.error(f"expected {exc}, got {_kind(value)}", mapping, key, service) from None

    def rules(self, mapping: _Mapping, service: str | None, base: dict[str, Any]) -> dict[str, Any]:
        rules = dict(base)
        if "cpu_percentile" in mapping:
            rules["cpu_percentile"] = self.number(
                mapping, "cpu_percentile", service, high=100, what="a percentile in (0, 100]"
            )
        if "spike_factor" in mapping:
            rules["spike_factor"] = self.number(mapping, "spike_factor", service, what="a factor > 0")
        if "max_restarts" in mapping:
            value = mapping["max_restarts"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self.error(f"expected a whole number >= 0, got {value!r}", mapping, "max_restarts", service)
            rules["max_restarts"] = value
        return rules

    def parse(self, data: Any) -> Budgets:
        if data is None:
            raise K2InputError("empty budgets file; expected a mapping with version, stack and services",
                               path=self.path)
        if not isinstance(data, _Mapping):
            raise K2InputError(f"expected a mapping with version, stack and services, got {_kind(data)}",
                               path=self.path, line=1)
        self.check_keys(data, _TOP_KEYS)
        if "version" not in data:
            raise self.error("missing key 'version'; expected version: 1", data)
        if data["version"] not in SUPPORTED_VERSIONS or isinstance(data["version"], bool):
            raise self.error(f"unsupported version {data['version']!r}; expected 1", data, "version")

        stack = self.mapping(data.get("stack", _empty(data)), data, "stack")
        self.check_keys(stack, _STACK_KEYS, section="stack")
        name = stack.get("name", "stack")
        project = stack.get("compose_project")
        for key, value in (("name", name), ("compose_project", project)):
            if value is not None and not (isinstance(value, str) and value.strip()):
                raise self.error(f"expected a non-empty string, got {value!r}", stack, key)

        defaults = self.mapping(data.get("defaults", _empty(data)), data, "defaults")
        self.check_keys(defaults, _DEFAULT_KEYS, section="defaults")
        base = self.rules(defaults, None, {"cpu_percentile": 99.0, "spike_factor": 2.0, "max_restarts": 0})

        if "services" not in data:
            raise self.error("missing key 'services'; expected a mapping of service name to {cpu, ram}", data)
        services_map = self.mapping(data["services"], data, "services")
        if not services_map:
            raise self.error("expected at least one service", data, "services")
        services = []
        for service, entry in services_map.items():
            if not _SERVICE_NAME.match(service):
                raise self.error("expected a service name of letters, digits, '_', '.' and '-', starting with a "
                                 "letter or digit (as compose names services)", services_map, service)
            if service.upper() == "TOTAL":
                raise self.error("the name TOTAL is reserved for the stack total; rename the service",
                                 services_map, service)
            spec = self.mapping(entry, services_map, service, service)
            self.check_keys(spec, _SERVICE_KEYS, service)
            for required in ("cpu", "ram"):
                if required not in spec:
                    raise self.error(
                        f"missing key {required!r}; expected cpu (cores) and ram (size)", spec, None, service
                    )
            notes = spec.get("notes", "")
            services.append(
                ServiceBudget(
                    name=service,
                    cpu=self.number(spec, "cpu", service, what="CPU cores > 0"),
                    ram=self.size(spec, "ram", service),
                    notes="" if notes is None else str(notes),
                    line=services_map.key_lines[service],
                    **self.rules(spec, service, base),
                )
            )

        cpu_sum = sum(s.cpu for s in services)
        ram_sum = sum(s.ram for s in services)
        warnings = []
        total_cpu, total_ram = cpu_sum, ram_sum
        total_line = data.key_lines["services"]
        if "total" in stack:
            total_line = stack.key_lines["total"]
            total = self.mapping(stack["total"], stack, "total")
            self.check_keys(total, _TOTAL_KEYS, section="stack.total")
            if "cpu" in total:
                total_cpu = self.number(total, "cpu", None, what="CPU cores > 0")
                if not math.isclose(total_cpu, cpu_sum, rel_tol=1e-9):
                    warnings.append(
                        f"{self.path}:{total.key_lines['cpu']}: stack.total.cpu {total_cpu:g} differs from the "
                        f"sum of the services' CPU budgets {cpu_sum:g}; judging the total against {total_cpu:g}"
                    )
            if "ram" in total:
                total_ram = self.size(total, "ram", None)
                if total_ram != ram_sum:
                    warnings.append(
                        f"{self.path}:{total.key_lines['ram']}: stack.total.ram {format_budget_size(total_ram)} "
                        f"differs from the sum of the services' RAM budgets {format_budget_size(ram_sum)}; "
                        f"judging the total against {format_budget_size(total_ram)}"
                    )
        return Budgets(
            path=self.path,
            stack_name=str(name),
            compose_project=project,
            services=tuple(services),
            total_cpu=total_cpu,
            total_ram=total_ram,
            warnings=tuple(warnings),
            default_cpu_percentile=base["cpu_percentile"],
            total_line=total_line,
        )


def _empty(parent: _Mapping) -> _Mapping:
    empty = _Mapping()
    empty.line = parent.line
    empty.key_lines = {}
    return empty


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the string {value!r}"
    return f"{type(value).__name__} {value!r}"
