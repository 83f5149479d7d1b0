"""Hours of mixed load without drift: sync invokes at concurrency 32, async invokes, a queue mapping and a
stream mapping together, with a kill -9 and restart half-way; server growth, errors and every
acknowledged event accounted for.

Run: `.venv/bin/python benchmarks/soak.py [--minutes N] [--output FILE] [--html FILE]` (the `soak`
section of `hearth bench`). It starts its own Hearth server, kills and restarts it, and stops it.
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "soak", *sys.argv[1:]]))
