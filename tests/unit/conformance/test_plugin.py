"""The conformance plugin: LocalStack internals the pinned release lacks are provided, nothing else."""

from __future__ import annotations

import importlib
import sys

import pytest

from hearth.conformance import plugin


def test_missing_internals_are_provided_and_present_ones_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin, "MISSING_INTERNALS", {
        "json.hearth_missing_for_test": {"VALUE": {"a": 1}},  # its package exists, the module does not
        "json.decoder": {"VALUE": 2},  # importable: never replaced
        "no_such_package_here.module": {"VALUE": 3},  # no parent package: nothing would import it
    })
    monkeypatch.delitem(sys.modules, "json.hearth_missing_for_test", raising=False)
    assert plugin.provide_missing_internals() == ["json.hearth_missing_for_test"]
    assert importlib.import_module("json.hearth_missing_for_test").VALUE == {"a": 1}
    assert not hasattr(importlib.import_module("json.decoder"), "VALUE")
    monkeypatch.delitem(sys.modules, "json.hearth_missing_for_test")
