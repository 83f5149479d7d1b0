"""A server killed with -9 and never started again leaves its host network behind; the next server to
set up its own sweeps it (hearth.sandbox.network.NetworkPool.sweep_orphans): a record whose process is
gone (or whose pid now belongs to another process) is swept, a live owner's is kept."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hearth.sandbox import network
from hearth.sandbox.network import NetworkPool


def test_only_the_networks_of_dead_owners_are_swept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(network, "OWNERS", tmp_path)
    removed: list[str] = []
    monkeypatch.setattr(NetworkPool, "remove_leftovers", classmethod(lambda cls, instance: removed.append(instance)))
    network._claim("aaaaaaaaaaaa")  # this process: alive
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / "bbbbbbbbbbbb").write_text(f"{dead.pid} 1\n")  # gone
    (tmp_path / "cccccccccccc").write_text(f"{os.getpid()} 1\n")  # a pid now another process's
    (tmp_path / "dddddddddddd").write_text("garbage\n")
    assert sorted(NetworkPool.sweep_orphans()) == ["bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"]
    assert sorted(removed) == ["bbbbbbbbbbbb", "cccccccccccc", "dddddddddddd"]
    assert [p.name for p in tmp_path.iterdir()] == ["aaaaaaaaaaaa"]
    network._release("aaaaaaaaaaaa")
    assert list(tmp_path.iterdir()) == []
