"""`swarm doctor`: check the tools, the configuration and the registry. What only this command needs is imported
inside it, so every other command starts fast."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.apps import app
from orchestrator.cli.output import console


@app.command()
def doctor() -> None:
    """Check git, tmux, the agent CLIs, the configuration, the registry and, for container profiles, the engine,
    the image and a commit made in a container."""
    from rich.text import Text

    from orchestrator.doctor import run_doctor

    ok = True
    for good, line in run_doctor(Path.cwd()):
        mark = Text("ok   ", style="green") if good else Text("FAIL ", style="red")
        console().print(Text.assemble(mark, line), highlight=False)  # advice like [agents.x] is text, not markup
        ok = ok and good
    if not ok:
        raise typer.Exit(1)
