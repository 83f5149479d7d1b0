"""API Gateway figures: warm HTTP API and REST API requests to a no-op function, p50/p99 against the
ASGI echo baseline in the same run (target <= 2.5x), and requests per second at concurrency 16.

Run: `.venv/bin/python benchmarks/apigw.py [--warm-runs N] [--seconds S] [--output FILE]` (the `apigw`
section of `hearth bench`). It starts its own Hearth server and echo app and stops them.
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "apigw", *sys.argv[1:]]))
