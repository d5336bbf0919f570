"""`swarm serve`: the monitor as a service that reacts to events. The service itself (uvicorn, Starlette,
APScheduler) is imported inside the command, so every other command starts fast."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.apps import app


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (webhooks come through a proxy or tunnel)")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port (0: any free port, written to .swarm/serve.json)")] = 8765,
    interval: Annotated[str, typer.Option(help="Time between full reconciles, e.g. 10m")] = "10m",
) -> None:
    """Run the monitor as a service: reconcile on a timer, react within seconds to agent exits, CLI commands
    and GitHub webhooks (POST /webhooks/github). SIGTERM finishes the current tick and exits."""
    from orchestrator.serve.command import serve as run

    run(host=host, port=port, interval=interval)
