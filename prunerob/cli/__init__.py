"""The ``prunerob`` command line: experiment commands (:mod:`.experiments`) and theory commands
(:mod:`.theory`); ``prunerob reproduce`` lives in :mod:`prunerob.runner`."""
from prunerob.cli.experiments import build_parser, main

__all__ = ["build_parser", "main"]
