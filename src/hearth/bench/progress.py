"""Progress of a running benchmark: what it is doing now and how far it got.

It owns the small interface the benchmark sections report through (`Progress.phase`), so that the
sections stay free of any terminal library; the CLI passes a rich-backed one, tests and scripts the
silent default. It never measures anything and never writes results.
"""

from __future__ import annotations

from collections.abc import Callable


class Progress:
    """Silent progress: each phase returns a function to call once per completed step."""

    def phase(self, description: str, total: int) -> Callable[[int], None]:
        return _ignore


def _ignore(_steps: int = 1) -> None:
    return None


SILENT = Progress()
