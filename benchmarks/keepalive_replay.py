"""Keep-alive replay: cold-start rate and idle environment-seconds of the adaptive (hybrid histogram)
policy against a fixed 10-minute keep-alive, on a synthetic bursty/periodic 24-hour trace replayed
with a simulated clock (seconds of real time).

Run: `.venv/bin/python benchmarks/keepalive_replay.py [--output FILE]` (the `keepalive` section of
`hearth bench`).
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "keepalive", *sys.argv[1:]]))
