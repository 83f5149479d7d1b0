"""Snapshot templates: one per version, re-made when it died or grew older than its age limit (its clones
inherit its role session, which must be renewed before it ends)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any
from unittest import mock

from tests.unit.invoke.test_provisioned import fv

from hearth.invoke import launch
from hearth.invoke.snapshot import SnapshotTemplates


def _templates(max_age_s: float | None) -> tuple[SnapshotTemplates, list[Any]]:
    made: list[Any] = []

    def make_env(*args: Any) -> Any:
        env = mock.MagicMock()
        env.start, env.kill = mock.AsyncMock(), mock.AsyncMock()
        env.alive, env.sandbox, env.created_at = True, None, time.monotonic()
        env.take_init_log.return_value = []
        made.append(env)
        return env

    return SnapshotTemplates(mock.MagicMock(), make_env, max_age_s=max_age_s), made


async def test_a_template_is_reused_until_it_ages_then_replaced() -> None:
    templates, made = _templates(max_age_s=100.0)
    f = fv()
    key = (f.function_arn, f.version, f.revision_id)
    first = await templates.template(f, key)
    assert await templates.template(f, key) is first and len(made) == 1
    templates.clone_started(first, "clone-1")
    made[0].created_at -= 200.0
    second = await templates.template(f, key)
    assert second is not first and len(made) == 2
    await asyncio.sleep(0)
    made[0].kill.assert_not_awaited()  # its clone still runs from it
    templates.clone_gone("clone-1")
    await asyncio.sleep(0)
    made[0].kill.assert_awaited_once()
    assert await templates.template(f, key) is second


async def test_without_an_age_limit_a_template_lives_on() -> None:
    templates, made = _templates(max_age_s=None)
    f = fv()
    key = (f.function_arn, f.version, f.revision_id)
    first = await templates.template(f, key)
    made[0].created_at -= 1e6
    assert await templates.template(f, key) is first


def test_versions_with_extensions_or_an_exec_wrapper_are_restored(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    (layer / "extensions").mkdir(parents=True)
    (layer / "extensions" / "ext").write_text("#!/bin/sh\n")
    templates, _ = _templates(max_age_s=None)
    with_ext = dataclasses.replace(fv(), runtime="python3.12", layer_dirs=(layer,),
                                   snap_start_apply_on="PublishedVersions")
    assert templates.applies(with_ext)
    wrapped = dataclasses.replace(with_ext, environment={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"})
    assert templates.applies(wrapped)


def test_a_snapstart_spec_keeps_the_zygote_runtime_and_starts_extensions_in_clones(tmp_path: Path) -> None:
    layer = tmp_path / "layer"
    (layer / "extensions").mkdir(parents=True)
    (layer / "extensions" / "ext").write_text("#!/bin/sh\n")
    f = dataclasses.replace(fv(), runtime="python3.12", layer_dirs=(layer,), code_dir=tmp_path)
    creds = launch.Credentials("AKID", "secret")

    def spec(init_type: str, f: Any = f) -> Any:
        return launch.build_spec(f, env_id="e", log_stream="s", credentials=creds, endpoint_url="http://x",
                                 isolated=True, initialization_type=init_type)

    snap = spec("snap-start")
    assert snap.python_fork is not None and snap.argv[-1].endswith("bootstrap.py")
    assert snap.restore_argv[-2:] == (launch.LAUNCHER_MOUNT, "--restore")
    assert (launch.LAUNCHER, launch.LAUNCHER_MOUNT) in snap.extra_ro_mounts
    on_demand = spec("on-demand")  # the launcher starts the runtime itself
    assert on_demand.python_fork is None and launch.LAUNCHER_MOUNT in on_demand.argv and not on_demand.restore_argv
    # With an exec wrapper the runtime is exec'd, and the bootstrap it ends in is the template itself.
    wrapped = spec("snap-start", dataclasses.replace(f, environment={"AWS_LAMBDA_EXEC_WRAPPER": "/opt/wrapper"}))
    assert wrapped.python_fork is None and wrapped.argv[0] == "/opt/wrapper"
    assert wrapped.snapshot_module == launch.ZYGOTE_MOUNT
    assert (launch.ZYGOTE, launch.ZYGOTE_MOUNT) in wrapped.extra_ro_mounts
    assert wrapped.restore_argv == snap.restore_argv
    assert not spec("on-demand", dataclasses.replace(f, environment={"AWS_LAMBDA_EXEC_WRAPPER": "/w"})).snapshot_module
