"""Where the bundled AWS SDK for JavaScript appears in a Node.js environment: mounted read-only at the
root's node_modules (ES modules) and after the layers in NODE_PATH (CommonJS) when set-up installed it;
on the process backend, its host path and the ES-module fallback flag; nothing when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

from hearth.functions.model import FunctionVersion
from hearth.invoke import launch
from hearth.invoke.launch import NODE_SDK_MOUNT, Credentials, build_spec
from hearth.runtimes import registry
from hearth.runtimes.registry import RuntimeInfo

NODE = RuntimeInfo("nodejs20.x", "nodejs", Path("/usr/bin/node"), "20.11.1", Path("/usr"))


def _fv(code: Path) -> FunctionVersion:
    return FunctionVersion(
        account_id="000000000000", region="us-east-1", name="f", version="$LATEST",
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:f", runtime="nodejs20.x",
        handler="index.handler", memory_mb=128, timeout_s=3, ephemeral_mb=512, environment={},
        code_dir=code, code_sha256="x", revision_id="r", state="Active",
    )


def _spec(tmp_path: Path, isolated: bool) -> launch.SandboxSpec:
    return build_spec(_fv(tmp_path), env_id="e", log_stream="s", credentials=Credentials("a", "b"),
                      endpoint_url="http://127.0.0.1:4566", isolated=isolated)


@pytest.fixture(autouse=True)
def node_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(launch, "runtime_for", lambda runtime_id: NODE)


def test_installed_sdk_is_mounted_read_only_after_the_layers(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    sdk = tmp_path / "node_modules"
    (sdk / "@aws-sdk" / "client-sts").mkdir(parents=True)
    (sdk / "@aws-sdk" / "client-sts" / "package.json").write_text('{"name": "x", "version": "3.9.0"}')
    monkeypatch.setenv(registry.NODE_SDK_ENV, str(sdk))
    assert registry.node_sdk_version() == "3.9.0"
    spec = _spec(tmp_path, isolated=True)
    assert (sdk, NODE_SDK_MOUNT) in spec.extra_ro_mounts
    assert spec.env["NODE_PATH"].split(":") == [
        "/opt/nodejs/node20/node_modules", "/opt/nodejs/node_modules", "/var/runtime/node_modules",
        "/node_modules", "/var/runtime", "/var/task"]
    assert spec.argv[-1] == "/var/runtime/bootstrap.mjs"
    plain = _spec(tmp_path, isolated=False)
    assert str(sdk) in plain.env["NODE_PATH"].split(":")
    assert plain.argv[-2:] == ["--esm-sdk", str(sdk)]


def test_absent_sdk_mounts_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(registry.NODE_SDK_ENV, str(tmp_path / "missing"))
    assert registry.node_sdk_dir() is None and registry.node_sdk_version() is None
    spec = _spec(tmp_path, isolated=True)
    assert all(target != NODE_SDK_MOUNT for _, target in spec.extra_ro_mounts)
    assert "/node_modules" not in spec.env["NODE_PATH"].split(":")
    assert "--esm-sdk" not in _spec(tmp_path, isolated=False).argv
