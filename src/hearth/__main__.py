"""`python -m hearth` is the `hearth` command."""

from hearth.cli.main import main

main()
