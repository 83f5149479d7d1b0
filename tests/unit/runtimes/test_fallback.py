"""HEARTH_RUNTIME_FALLBACK: off by default (a runtime the host lacks fails clearly); `nearest` runs it on
the nearest installed version of its language and says so (INIT log line, `hearth runtimes`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from hearth.cli.main import main
from hearth.runtimes import registry
from hearth.runtimes.registry import RuntimeInfo

HOST = {
    "python3.11": RuntimeInfo("python3.11", "python", Path("/usr/bin/python3.11"), "3.11", Path("/usr")),
    "python3.13": RuntimeInfo("python3.13", "python", Path("/usr/bin/python3.13"), "3.13", Path("/usr")),
    "nodejs20.x": RuntimeInfo("nodejs20.x", "nodejs", Path("/usr/bin/node"), "20.11.1", Path("/usr")),
    "provided.al2023": RuntimeInfo("provided.al2023", "provided", None, ""),
}


@pytest.fixture(autouse=True)
def host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "installed_runtimes", lambda: HOST)
    monkeypatch.delenv("HEARTH_RUNTIME_FALLBACK", raising=False)


def test_off_by_default_a_missing_runtime_fails_clearly() -> None:
    assert registry.runtime_for("python3.14") is None
    assert registry.fallback_note("python3.14") is None
    reason = registry.runtime_unavailable_reason("python3.14")
    assert reason is not None and reason.startswith("The runtime python3.14 is not installed on this Hearth host.")


def test_nearest_picks_the_nearest_version_of_the_same_language(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_RUNTIME_FALLBACK", "nearest")
    assert registry.runtime_for("python3.14") is HOST["python3.13"]
    assert registry.runtime_for("python3.12") is HOST["python3.13"]  # equally near: the newer
    assert registry.runtime_for("python3.11") is HOST["python3.11"]  # installed: its own
    assert registry.runtime_for("nodejs24.x") is HOST["nodejs20.x"]
    assert registry.runtime_for("java21") is None  # no other language stands in
    assert registry.runtime_unavailable_reason("nodejs24.x") is None
    assert registry.fallback_note("python3.11") is None
    assert registry.fallback_note("python3.14") == (
        "python3.14 is not installed on this host: running on python3.13 (3.13) instead "
        "(HEARTH_RUNTIME_FALLBACK=nearest)")


def test_an_unknown_setting_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_RUNTIME_FALLBACK", "newest")
    with pytest.raises(ValueError, match="expected 'none' or 'nearest'"):
        registry.runtime_for("python3.14")


def test_hearth_runtimes_lists_the_stand_ins(monkeypatch: pytest.MonkeyPatch) -> None:
    from hearth.cli import runtimes as cli

    monkeypatch.setattr(cli, "installed_runtimes", lambda: HOST)
    plain = CliRunner().invoke(main, ["runtimes"], env={"COLUMNS": "200"})
    assert plain.exit_code == 0 and "python3.14" not in plain.output
    monkeypatch.setenv("HEARTH_RUNTIME_FALLBACK", "nearest")
    shown = CliRunner().invoke(main, ["runtimes"], env={"COLUMNS": "200", "HEARTH_RUNTIME_FALLBACK": "nearest"})
    assert shown.exit_code == 0, shown.output
    assert "runs on python3.13 (3.13)" in shown.output and "nodejs24.x" in shown.output
