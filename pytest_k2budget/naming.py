"""Which compose service a container belongs to, when no compose labels say so (replay, unlabelled containers)."""

from __future__ import annotations

import re
from collections.abc import Iterable

# Compose v2 names containers `<project>-<service>-<n>`, compose v1 `<project>_<service>_<n>`.
_REPLICA_RE = re.compile(r"^(?P<stem>.+)[-_](?P<index>\d+)$")


def service_for_name(name: str, services: Iterable[str], project: str | None = None) -> str:
    """The budgeted service a container name belongs to, else the name's service part (unbudgeted).

    A container named exactly after a service (`container_name: redpanda`) is that service. Otherwise the
    replica suffix and the project prefix are stripped; without a known project, the longest budgeted
    service that ends the stem wins, so `k2-feed-handler-kraken-1` is `feed-handler-kraken`.
    """
    name = name.lstrip("/")
    known = set(services)
    if name in known:
        return name
    match = _REPLICA_RE.match(name)
    stem = match.group("stem") if match else name
    if project:
        for sep in ("-", "_"):
            prefix = project + sep
            if stem.startswith(prefix) and len(stem) > len(prefix):
                return stem[len(prefix):]
    for service in sorted(known, key=len, reverse=True):
        if stem == service or stem.endswith("-" + service) or stem.endswith("_" + service):
            return service
    return stem
