"""Cgroup groups get the limits they are asked for, and are removed without leaks."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from hearth.sandbox.cgroups import CgroupTree, CgroupUnavailable, Limits


@pytest.fixture
def tree() -> Iterator[CgroupTree]:
    if os.geteuid() != 0:
        pytest.skip("cgroups need root")
    try:
        found = CgroupTree.detect("itest" + os.urandom(4).hex())
    except CgroupUnavailable as exc:
        pytest.skip(f"no usable cgroup hierarchy: {exc}")
    yield found
    assert found.clean() == []
    found.remove_root()
    assert not any(root.exists() for root in found.roots.values())


def _read(path: object) -> str:
    with open(str(path)) as f:
        return f.read().strip()


def test_limits_are_written(tree: CgroupTree) -> None:
    group = tree.create("g1", Limits(memory_bytes=96 << 20, cpu_fraction=0.25, pids=33))
    try:
        if tree.version == 2:
            d = group.dirs["unified"]
            assert _read(d / "memory.max") == str(96 << 20)
            assert _read(d / "pids.max") == "33"
            assert _read(d / "cpu.max") == "5000 20000"
        else:
            assert _read(group.dirs["memory"] / "memory.limit_in_bytes") == str(96 << 20)
            assert _read(group.dirs["pids"] / "pids.max") == "33"
            assert _read(group.dirs["cpu"] / "cpu.cfs_quota_us") == "5000"
            assert _read(group.dirs["cpu"] / "cpu.cfs_period_us") == "20000"
        assert group.pids() == []
        assert not group.oom_killed()
        group.freeze()
        group.thaw()
    finally:
        assert group.destroy(1.0)
    assert not any(d.exists() for d in group.dirs.values())


def test_existing_groups_are_cleaned(tree: CgroupTree) -> None:
    tree.create("left-behind", Limits(64 << 20, 1.0, 10))
    assert [g.name for g in tree.existing()] == ["left-behind"]
    assert tree.clean() == []
    assert tree.existing() == []


def test_unavailable_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hearth.sandbox.cgroups._mounts", lambda: [])
    with pytest.raises(CgroupUnavailable, match=r"cgroup v2: .*cgroup v1: "):
        CgroupTree.detect("inone")
