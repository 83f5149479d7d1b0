"""DynamoDB figures: PutItem/GetItem p50/p99 and ops/s against the ASGI echo baseline, a Query of 1,000
items, and PutItem -> stream -> handler latency.

Run: `.venv/bin/python benchmarks/dynamodb.py [--output FILE]` (the `dynamodb` section of `hearth bench`).
It starts its own Hearth and echo servers and stops them.
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "dynamodb", *sys.argv[1:]]))
