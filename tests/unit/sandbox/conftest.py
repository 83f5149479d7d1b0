"""Fixtures for the isolation backend tests: real backends, a code dir, and a way to run a spec."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hearth.sandbox.namespace import NamespaceBackend, NamespaceUnavailable
from hearth.sandbox.process import ProcessBackend


@pytest.fixture
async def ns_backend(tmp_path: Path) -> AsyncIterator[NamespaceBackend]:
    if os.geteuid() != 0:
        pytest.skip("namespace sandboxes need root (the server runs as root to isolate)")
    try:
        backend = await NamespaceBackend.open(tmp_path / "data", self_test=False)
    except NamespaceUnavailable as exc:
        pytest.skip(f"namespace isolation unavailable here: {exc}")
    tree = backend._tree
    try:
        yield backend
    finally:
        await backend.close()
    # Nothing may leak: every environment group and our instance directory are gone.
    assert tree.existing() == []
    assert not any(root.exists() for root in tree.roots.values())


@pytest.fixture
async def proc_backend() -> AsyncIterator[ProcessBackend]:
    backend = ProcessBackend()
    try:
        yield backend
    finally:
        await backend.close()


@pytest.fixture
def code_dir(tmp_path: Path) -> Path:
    code = tmp_path / "code"
    code.mkdir()
    code.chmod(0o755)
    (code / "hello.txt").write_text("hello from the code dir\n")
    return code
