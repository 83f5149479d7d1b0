"""Deploy figure: `sam deploy` of the SAM corpus's largest application, start to CREATE_COMPLETE, against
its number of resources (seconds per resource).

Run: `.venv/bin/python benchmarks/deploy.py [--output FILE]` (the `deploy` section of `hearth bench`).
It starts its own Hearth server and stops it; it needs the SAM CLI that `./run setup` installs.
"""

from __future__ import annotations

import sys

from hearth.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--section", "deploy", *sys.argv[1:]]))
