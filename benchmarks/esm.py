"""Event source mapping figures: queue mapping throughput at batch sizes 1/10/100, SendMessage-to-
handler latency p50/p99, and stream records per second per shard.

Run: `.venv/bin/python benchmarks/esm.py [--output FILE]` (the `esm` section of `hearth bench`).
It starts its own Hearth server and stops it.
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "esm", *sys.argv[1:]]))
