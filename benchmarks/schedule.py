"""Schedule firing accuracy of the event bus: delay between a rule's due time and its firing.

Run: `.venv/bin/python benchmarks/schedule.py [--output FILE]` (the `schedule` section of `hearth bench`).
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "schedule", *sys.argv[1:]]))
