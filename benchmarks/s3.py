"""S3 figures: PUT/GET of a 256 MiB object against dd, 4 KiB operations per second against the echo
baseline, peak server RSS while moving a 2 GiB object.

Run: `.venv/bin/python benchmarks/s3.py [--output FILE]` (the `s3` section of `hearth bench`).
It starts its own Hearth server and echo app and stops them.
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "s3", *sys.argv[1:]]))
