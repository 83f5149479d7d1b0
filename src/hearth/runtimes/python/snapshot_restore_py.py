"""Runtime hooks for SnapStart, importable by Python functions as on AWS (`import snapshot_restore_py`).

It owns the two lists of hooks a function registers during INIT: the ones run once before the
snapshot is taken (newest first) and the ones run in every environment restored from it (oldest first).
Both registration functions return the function they were given, so they also work as decorators.
The runtime's bootstrap runs the hooks; this module never runs anything on import. It runs on
Python 3.8 to 3.14 and imports nothing.
"""

from __future__ import annotations

_before_snapshot: list = []
_after_restore: list = []


def register_before_snapshot(func, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run `func(*args, **kwargs)` once, after INIT and before the snapshot is taken."""
    _before_snapshot.append((func, args, kwargs))
    return func


def register_after_restore(func, *args, **kwargs):  # type: ignore[no-untyped-def]
    """Run `func(*args, **kwargs)` in every environment restored from the snapshot, before its first
    invocation."""
    _after_restore.append((func, args, kwargs))
    return func


def get_before_snapshot() -> list:
    return _before_snapshot


def get_after_restore() -> list:
    return _after_restore
