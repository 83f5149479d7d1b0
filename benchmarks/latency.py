"""Cold-start and warm-invoke latency of Hearth against same-run baselines.

Run: `.venv/bin/python benchmarks/latency.py [--runs N] [--warm-runs N] [--output FILE]`
(the same suite `hearth bench` runs). It starts its own Hearth server and echo app on free ports and
stops them when done. Figures are ratios: see docs/specification.md for the targets.
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
