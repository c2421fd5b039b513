"""The cgroup fast path reads what the Engine API reports: same counter, same working set, same OOM kills."""

from __future__ import annotations

import math
import time
from pathlib import Path

import docker
import pytest

from conftest import Stack, wait_for
from pytest_k2budget.sources.cgroups import CgroupReader, parse_api_time, reading_from_stats, working_set

FILL = "dd if=/dev/zero of=/data/fill bs=1M count=50 2>/dev/null && mkdir /data/done && sleep 3600"


@pytest.mark.docker
def test_cgroup_files_read_the_same_figures_as_the_api(docker_stack: Stack, docker_client: docker.DockerClient) -> None:
    reader = CgroupReader()
    if not reader.available:
        pytest.skip("no readable cgroup hierarchy here: the API path is used")
    busy = docker_stack.run("busy", "while :; do :; done", nano_cpus=300_000_000)
    filled = docker_stack.run("filled", FILL, tmpfs={"/data": "size=100m"})
    wait_for(lambda: filled.exec_run(["sh", "-c", "[ -d /data/done ]"]).exit_code == 0, what="the fill")
    for container in (busy, filled):
        info = docker_client.api.inspect_container(container.id)
        paths = reader.locate(container.id, info["State"]["Pid"], info["HostConfig"]["CgroupParent"])
        assert paths is not None and paths.version == reader.version
        # The same counter: the API's value falls between two direct reads taken around it.
        before = reader.read(paths, time.time())
        api = reading_from_stats(docker_client.api.stats(container.id, stream=False, one_shot=True))
        after = reader.read(paths, time.time())
        assert before is not None and after is not None and api.cpu_ns is not None
        assert before.cpu_ns is not None and after.cpu_ns is not None
        assert before.cpu_ns <= api.cpu_ns <= after.cpu_ns
        assert before.time <= api.time <= after.time + 0.05
        # The same working set (usage less inactive file cache), to the page, for a container at rest.
        assert api.ram is not None and after.ram is not None
        assert abs(api.ram - after.ram) <= 64 * 1024
        assert after.oom_kills == 0
    filled_reading = reader.read(reader.locate(filled.id, None) or pytest.fail("not located"), time.time())
    assert filled_reading is not None and filled_reading.ram is not None
    assert filled_reading.ram == pytest.approx(50 * (1 << 20), rel=0.05)


@pytest.mark.docker
def test_located_without_pid_and_gone_once_removed(docker_stack: Stack) -> None:
    reader = CgroupReader()
    if not reader.available:
        pytest.skip("no readable cgroup hierarchy here")
    container = docker_stack.run("idle")
    paths = reader.locate(container.id)
    assert paths is not None
    assert reader.read(paths, 0.0) is not None
    container.remove(force=True)
    wait_for(lambda: reader.read(paths, 0.0) is None, what="the cgroup to go")


def write_tree(root: Path, files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


CID = "ab" * 32
V2_FILES = {
    "cpu.stat": "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
    "memory.current": "104857600\n",
    "memory.stat": "anon 52428800\nfile 52428800\nactive_file 20971520\ninactive_file 31457280\n",
    "memory.events": "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n",
}


@pytest.mark.parametrize("scope", [f"system.slice/docker-{CID}.scope", f"docker/{CID}"])
def test_cgroup_v2_layouts_of_both_drivers(tmp_path: Path, scope: str) -> None:
    write_tree(tmp_path / "cg", {"cgroup.controllers": "cpu memory\n",
                                 **{f"{scope}/{name}": text for name, text in V2_FILES.items()}})
    reader = CgroupReader(tmp_path / "cg", proc=tmp_path / "proc")
    assert reader.version == 2 and reader.available
    paths = reader.locate(CID)
    assert paths is not None and paths.cpu == tmp_path / "cg" / scope
    reading = reader.read(paths, 12.5)
    assert reading is not None
    assert (reading.time, reading.cpu_ns, reading.oom_kills) == (12.5, 1_500_000_000, 2)
    assert reading.ram == 104857600 - 31457280


def test_cgroup_v2_custom_parent_found_through_proc(tmp_path: Path) -> None:
    scope = f"ci.slice/runner-{CID}.scope"
    write_tree(tmp_path / "cg", {"cgroup.controllers": "", **{f"{scope}/{n}": t for n, t in V2_FILES.items()}})
    write_tree(tmp_path / "proc", {"4242/cgroup": f"0::/{scope}\n"})
    reader = CgroupReader(tmp_path / "cg", proc=tmp_path / "proc")
    assert reader.locate(CID) is None
    paths = reader.locate(CID, pid=4242)
    assert paths is not None and paths.memory == tmp_path / "cg" / scope


def test_a_pid_whose_cgroup_is_not_the_containers_is_refused(tmp_path: Path) -> None:
    # The daemon's pid for the container exists here too, but belongs to another process (another host's pid).
    write_tree(tmp_path / "cg", {"cgroup.controllers": "", **{f"user.slice/{n}": t for n, t in V2_FILES.items()}})
    write_tree(tmp_path / "proc", {"4242/cgroup": "0::/user.slice\n"})
    reader = CgroupReader(tmp_path / "cg", proc=tmp_path / "proc")
    assert reader.locate(CID, pid=4242) is None


def test_cgroup_v1_with_joint_cpu_cpuacct_and_systemd_driver(tmp_path: Path) -> None:
    scope = f"system.slice/docker-{CID}.scope"
    write_tree(tmp_path / "cg", {
        f"cpu,cpuacct/{scope}/cpuacct.usage": "987654321\n",
        f"memory/{scope}/memory.usage_in_bytes": "10485760\n",
        f"memory/{scope}/memory.stat": "cache 4194304\ninactive_file 1048576\ntotal_inactive_file 2097152\n",
        f"memory/{scope}/memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
    })
    reader = CgroupReader(tmp_path / "cg", proc=tmp_path / "proc")
    assert reader.version == 1
    paths = reader.locate(CID)
    assert paths is not None
    reading = reader.read(paths, 1.0)
    assert reading is not None
    # v1 subtracts the hierarchical total_inactive_file, as docker stats does.
    assert (reading.cpu_ns, reading.ram, reading.oom_kills) == (987654321, 10485760 - 2097152, 1)


def test_no_hierarchy_means_unavailable(tmp_path: Path) -> None:
    reader = CgroupReader(tmp_path)
    assert not reader.available and reader.locate(CID) is None


def test_working_set_never_subtracts_more_than_usage() -> None:
    assert working_set(100, {"total_inactive_file": 30, "inactive_file": 10}) == 70
    assert working_set(100, {"inactive_file": 10}) == 90
    assert working_set(100, {"inactive_file": 200}) == 100


def test_stats_of_a_stopped_container_have_no_figures() -> None:
    reading = reading_from_stats({"read": "0001-01-01T00:00:00Z", "cpu_stats": {"cpu_usage": {"total_usage": 0}},
                                  "memory_stats": {}})
    assert reading.cpu_ns is None and reading.ram is None and math.isnan(reading.time)


def test_api_time_keeps_nanoseconds() -> None:
    assert parse_api_time("2026-12-04T19:59:53.976902983Z") == pytest.approx(1796414393.976902983, abs=1e-6)
    assert parse_api_time("2026-12-04T19:59:53Z") == 1796414393.0
    assert math.isnan(parse_api_time("garbage"))
