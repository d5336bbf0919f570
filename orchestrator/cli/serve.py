"""`swarm serve`: the monitor as a service that reacts to events. The service itself (uvicorn, Starlette,
APScheduler) is imported inside the command, so every other command starts fast."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.apps import app


@app.command("serve")
def serve(
    host: Annotated[str | None, typer.Option(
        help="Address to listen on (default: serve.host in swarm.toml, else 127.0.0.1); any other than loopback "
             "needs the dashboard's token in $SWARM_SERVE_TOKEN (serve.token_env)", show_default=False)] = None,
    port: Annotated[int | None, typer.Option(
        help="HTTP port (default: serve.port, else 8765; 0: any free port, written to .swarm/serve.json)",
        show_default=False)] = None,
    interval: Annotated[str, typer.Option(help="Time between full reconciles, e.g. 10m")] = "10m",
) -> None:
    """Run the monitor as a service: reconcile on a timer, react within seconds to agent exits, CLI commands
    and GitHub webhooks (POST /webhooks/github), and show the fleet in a browser (the dashboard at /).
    SIGTERM finishes the current tick and exits."""
    from orchestrator.serve.command import serve as run

    run(host=host, port=port, interval=interval)
