"""What the control plane needs from SnapStart, and how it fails.

It owns the contract between `hearth.functions` (a SnapStart version stays Pending until its snapshot
is taken, as on AWS) and whoever takes snapshots (the environment pool). It never takes one itself:
`functions/` must not start environments.
"""

from __future__ import annotations

from typing import Protocol

from hearth.functions.model import FunctionVersion


class SnapshotFailed(Exception):
    """A SnapStart version's INIT failed while its snapshot was taken."""

    def __init__(self, error_type: str, payload: bytes) -> None:
        super().__init__(error_type)
        self.error_type = error_type
        self.payload = payload  # the runtime's init error document


class SnapshotTaker(Protocol):
    """What the control plane asks of SnapStart (the invoker, the data plane's front door, implements it)."""

    def snapshot_applies(self, fv: FunctionVersion) -> bool:
        """Whether new environments of `fv` are restored from a snapshot."""
        ...

    async def prepare(self, fv: FunctionVersion) -> None:
        """Take `fv`'s snapshot now. Raises SnapshotFailed."""
        ...


class VpcNetworks(Protocol):
    """What the control plane asks of the networking side for a function with VpcConfig."""

    async def prepare(self, fv: FunctionVersion) -> str | None:
        """Make `fv`'s network ready (its interfaces, its hosts' pool): None, or why the function fails."""
        ...
