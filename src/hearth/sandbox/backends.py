"""Choosing the isolation backend at server start.

It owns the decision "namespace or process" and the sentence that explains a fallback. It never
silently downgrades isolation the operator asked for: `namespace` fails loudly when unavailable, and
`auto` says why it fell back.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

from hearth.sandbox.namespace import NamespaceBackend, NamespaceUnavailable
from hearth.sandbox.network import NetworkPool
from hearth.sandbox.process import ProcessBackend
from hearth.sandbox.types import IsolationBackend

log = logging.getLogger(__name__)

PROCESS_WARNING = (
    "isolation is 'process': functions run as plain processes of the server's user, with no "
    "filesystem, network, pid or memory isolation. Use it only for code you trust."
)


async def choose_backend(
    choice: Literal["auto", "namespace", "process"] | str, data_dir: Path, *, favor_dynmods: bool = True,
    network: NetworkPool | None = None,
) -> tuple[IsolationBackend, str | None]:
    """The backend to run environments with, and a warning for the operator (None when isolated).
    `network` (sandbox networking) is used by the namespace backend only."""
    if choice == "process":
        return ProcessBackend(), PROCESS_WARNING
    if choice not in ("auto", "namespace"):
        raise ValueError(f"unknown isolation {choice!r}: expected auto, namespace or process")
    try:
        backend = await NamespaceBackend.open(data_dir, favor_dynmods=favor_dynmods, network=network)
    except NamespaceUnavailable as exc:
        if choice == "namespace":
            raise RuntimeError(f"namespace isolation is unavailable: {exc}") from exc
        log.warning("namespace isolation unavailable (%s); falling back to process", exc)
        return ProcessBackend(), (
            f"namespace isolation is unavailable ({exc}); falling back to {PROCESS_WARNING}"
        )
    return backend, None
