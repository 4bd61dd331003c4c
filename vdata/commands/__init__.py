"""Subcommands of the ``vdata`` command line, one module each."""
