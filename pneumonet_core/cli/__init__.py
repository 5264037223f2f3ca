"""The `pneumonet` command line (`main`), its registry and audit commands (`admin`) and the
options built from training settings (`settings_options`)."""

from pneumonet_core.cli.main import EXIT_ERROR, build_parser, main

__all__ = ["EXIT_ERROR", "build_parser", "main"]
