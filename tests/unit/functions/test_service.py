"""FunctionService: the invoke-path cache, listeners, and recovery after a crash."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from tests import pgcluster
from tests.unit.lambda_.helpers import ACCOUNT, APP, Env, build, ctx, make_zip

from hearth.functions.errors import FunctionsError
from hearth.functions.model import FunctionVersion

REGION = "us-east-1"


async def test_resolve_is_served_from_memory(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    await env.create("hot")
    await env.settle()
    first = env.functions.resolve(ACCOUNT, REGION, "hot", None)
    calls: list[Any] = []
    original = env.store.get_version

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return original(*args, **kwargs)

    monkeypatch.setattr(env.store, "get_version", counting)
    for ref in ("hot", f"{ACCOUNT}:function:hot", f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:hot:$LATEST"):
        assert env.functions.resolve(ACCOUNT, REGION, ref, None) is first
    assert env.functions.resolve(ACCOUNT, REGION, "hot", "$LATEST") is first
    assert calls == []


async def test_unknown_qualifier_is_not_found(env: Env) -> None:
    await env.create("q")
    with pytest.raises(FunctionsError) as exc:
        env.functions.resolve(ACCOUNT, REGION, "q", "prod")
    assert exc.value.message == f"Function not found: arn:aws:lambda:{REGION}:{ACCOUNT}:function:q:prod"


async def test_listeners_hear_updates_and_cache_follows(env: Env) -> None:
    events: list[tuple[str, FunctionVersion]] = []
    env.functions.add_listener(lambda event, fv: events.append((event, fv)))
    await env.create("l")
    await env.settle()
    assert [(e, fv.state) for e, fv in events] == [("updated", "Active")]
    env.provider.update_function_configuration(ctx(), {"FunctionName": "l", "Timeout": 30})
    await env.settle()
    assert events[-1][0] == "updated" and events[-1][1].timeout_s == 30
    assert env.functions.resolve(ACCOUNT, REGION, "l", None) == events[-1][1]


async def test_failing_listener_does_not_break_the_change(env: Env) -> None:
    def bad(event: str, fv: FunctionVersion) -> None:
        raise RuntimeError("listener bug")

    env.functions.add_listener(bad)
    await env.create("x")
    await env.settle()
    assert env.functions.resolve(ACCOUNT, REGION, "x", None).state == "Active"


async def test_recover_finishes_pending_creates_and_updates(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = build(data)
    await first.create("a")
    await first.create("b")
    # A crash before the background work ran: close() cancels it, the rows stay Pending.
    await first.functions.close()
    first.store.close()

    second = build(data)
    try:
        assert second.store.get_version(ACCOUNT, REGION, "a").state == "Pending"  # type: ignore[union-attr]
        await second.functions.recover()
        for name in ("a", "b"):
            fv = second.functions.resolve(ACCOUNT, REGION, name, None)
            assert fv.state == "Active" and (fv.code_dir / "app.py").is_file()
        second.provider.update_function_configuration(ctx(), {"FunctionName": "a", "MemorySize": 256})
        await second.functions.close()
    finally:
        second.store.close()

    third = build(data)
    try:
        await third.functions.recover()
        cfg = third.provider.get_function_configuration(ctx(), {"FunctionName": "a"})
        assert (cfg["LastUpdateStatus"], cfg["MemorySize"]) == ("Successful", 256)
    finally:
        await third.functions.close()
        third.store.close()


async def test_recover_reextracts_missing_code(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = build(data)
    await first.create("gone", Code={"ZipFile": make_zip({"app.py": APP})})
    await first.settle()
    code_dir = first.functions.resolve(ACCOUNT, REGION, "gone", None).code_dir
    await first.functions.close()
    first.store.close()
    shutil.rmtree(code_dir)

    second = build(data)
    try:
        await second.functions.recover()
        assert (code_dir / "app.py").is_file()
        assert second.functions.resolve(ACCOUNT, REGION, "gone", None).state == "Active"
    finally:
        await second.functions.close()
        second.store.close()


async def test_missing_blob_marks_function_failed(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = build(data)
    await first.create("lost")
    await first.functions.close()
    first.store.close()
    for blob in (data / "blobs" / "sha256").iterdir():
        blob.unlink()

    second = build(data)
    try:
        await second.functions.recover()
        cfg = second.provider.get_function_configuration(ctx(), {"FunctionName": "lost"})
        if pgcluster.enabled():  # the archive is in the database too: the lost local copy is fetched again
            assert cfg["State"] == "Active"
        else:
            assert (cfg["State"], cfg["StateReasonCode"]) == ("Failed", "InternalError")
    finally:
        await second.functions.close()
        second.store.close()
