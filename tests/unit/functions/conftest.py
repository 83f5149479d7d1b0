"""The `env` fixture: a Lambda provider over a real store in a temporary data directory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.unit.lambda_.helpers import Env, build


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    e = build(tmp_path / "data")
    await e.functions.recover()
    yield e
    await e.functions.close()
    e.store.close()
