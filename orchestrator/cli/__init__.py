"""`swarm`'s command line: ``main`` is the console script's entry point (see ``entry.py``)."""

from orchestrator.cli.entry import main

__all__ = ["main"]
