"""Docker fixtures: a real engine, an image built offline, containers that are labelled ours and removed after.

No registry is reachable, so the image is a root filesystem holding Debian's static busybox, `docker import`ed
once per session. Every container and the image carry the label `k2budget.test=1`; nothing else is touched.
Without an engine these tests skip locally and fail when CI is set.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest
from docker.models.containers import Container
from images import find_busybox, import_busybox_image

from pytest_k2budget import options
from pytest_k2budget.budgets import Budgets, parse_budgets

TEST_LABEL = "k2budget.test"
def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI needs a reachable Docker Engine: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except docker.errors.DockerException as exc:
        _unavailable(f"Docker Engine unreachable: {str(exc).splitlines()[0]}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def busybox_image(docker_client: docker.DockerClient) -> Iterator[str]:
    """A busybox-only image, imported from a tar built in memory (Debian's busybox-static is statically linked)."""
    busybox = find_busybox()
    if busybox is None:
        _unavailable("no static busybox to build the test image from (apt-get install busybox-static)")
        raise AssertionError("unreachable")
    tag = f"k2budget-test-busybox:{uuid.uuid4().hex[:10]}"
    import_busybox_image(docker_client, busybox, tag, (TEST_LABEL, "1"), '["sleep", "3600"]')
    yield tag
    with contextlib.suppress(docker.errors.APIError):
        docker_client.images.remove(tag, force=True)


class Stack:
    """Containers of one throwaway compose project, labelled as compose labels them."""

    def __init__(self, client: docker.DockerClient, image: str) -> None:
        self.client = client
        self.image = image
        self.project = f"k2t{uuid.uuid4().hex[:8]}"
        self.containers: list[Container] = []
        self._counts: dict[str, int] = {}

    def run(self, service: str, command: str = "sleep 3600", *, labelled: bool = True, **kwargs: Any) -> Container:
        self._counts[service] = self._counts.get(service, 0) + 1
        labels = {TEST_LABEL: "1"}
        if labelled:
            labels |= {"com.docker.compose.project": self.project, "com.docker.compose.service": service}
        name = f"{self.project}-{service}-{self._counts[service]}"
        try:
            container = self.client.containers.run(self.image, ["sh", "-c", command], detach=True, labels=labels,
                                                   name=name, **kwargs)
        except docker.errors.APIError:
            # A container created but not started would outlive the test.
            with contextlib.suppress(docker.errors.NotFound):
                self.client.containers.get(name).remove(force=True)
            raise
        self.containers.append(container)
        return container

    def remove_all(self) -> None:
        for container in self.containers:
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        self.containers.clear()


@pytest.fixture
def docker_stack(docker_client: docker.DockerClient, busybox_image: str) -> Iterator[Stack]:
    made = Stack(docker_client, busybox_image)
    yield made
    made.remove_all()


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def budgets_for(project: str, services: str, total: str = "") -> Budgets:
    """A budgets file for a test project; `services` is the YAML body of `services:`, indented 2."""
    text = f"version: 1\nstack:\n  name: test stack\n  compose_project: {project}\n{total}services:\n{services}"
    return parse_budgets(text, "budgets.yml")


def live_settings(record: Path, burn_in: float, *, interval: float | None = 1.0, fail_fast: bool = False,
                  compose_project: str | None = None) -> options.Settings:
    return options.Settings(
        mode="live", budgets_path=Path("budgets.yml"), burn_in=burn_in, interval=interval,
        compose_project=compose_project, record_path=record, fail_fast=fail_fast,
    )
