"""The `hearth` command line: one module per command."""
