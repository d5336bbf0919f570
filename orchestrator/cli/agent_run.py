"""`swarm agent-run` (hidden): the wrapper inside each tmux session. What only this command needs is imported inside
it, so every other command starts fast."""

from __future__ import annotations

from pathlib import Path

import typer

from orchestrator.cli.apps import app


@app.command("agent-run", hidden=True)
def agent_run(run_dir: Path) -> None:
    """The wrapper that runs inside each tmux session."""
    from monitor.agent_run import main as wrapper

    raise typer.Exit(wrapper([str(run_dir)]))
