"""The server's wiring: a start that fails halfway stops exactly what it had started, in reverse order,
and a server that never started stops cleanly and reports itself as starting."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth import server as server_mod
from hearth.config import Settings
from hearth.sandbox.fake import FakeBackend, FakeFunction
from hearth.sandbox.types import IsolationBackend
from hearth.server import Hearth
from hearth.store.component import ComponentDbError


async def echo(payload: bytes) -> bytes:
    return payload


async def test_a_server_that_never_started_stops_cleanly(tmp_path: Path) -> None:
    hearth = Hearth(Settings(data_dir=tmp_path / "data"))
    assert hearth.health()["status"] == "starting"
    await hearth.stop()


async def test_a_failed_start_stops_what_it_started_in_reverse(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend(FakeFunction(echo))

    async def choose(*args: object, **kwargs: object) -> tuple[IsolationBackend, str | None]:
        return backend, None

    def refuse(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no limiter today")

    monkeypatch.setattr(server_mod, "choose_backend", choose)
    monkeypatch.setattr(server_mod, "ConcurrencyLimiter", refuse)
    hearth = Hearth(Settings(data_dir=tmp_path / "data"))
    with pytest.raises(RuntimeError, match="no limiter today"):
        await hearth.start()
    assert not hearth.started
    await hearth.stop()
    assert backend.closed  # started before the failure: stopped
    with pytest.raises(ComponentDbError):  # the stores were closed, last
        hearth.store.get_version("000000000000", "us-east-1", "f")
    with pytest.raises(ComponentDbError):
        hearth.log_store.describe_groups("000000000000", "us-east-1")
