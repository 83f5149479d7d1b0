"""Throughput at concurrency 1/4/16 against the echo app, scale-out rate and density of Hearth.

Run: `.venv/bin/python benchmarks/scale.py [--seconds S] [--burst N] [--output FILE]`
(the `scale` section of `hearth bench`). It starts its own Hearth server and echo app and stops them.
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "scale", *sys.argv[1:]]))
