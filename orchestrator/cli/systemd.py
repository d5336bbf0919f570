"""`swarm systemd install`: the monitor as systemd user services. What only this command needs is imported inside
it, so every other command starts fast."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.apps import systemd_app
from orchestrator.cli.output import err


@systemd_app.command("install")
def systemd_install(
    print_only: Annotated[bool, typer.Option("--print", help="Only print the units and the commands")] = False,
    serve: Annotated[bool, typer.Option("--serve", help="Also the `swarm serve` unit (instead of the timer or the "
                                                        "daemon)")] = False,
) -> None:
    """Render the units with this machine's paths into ~/.config/systemd/user and say what to run next."""
    from orchestrator import systemd
    from orchestrator.config import CONFIG_NAME, load
    from orchestrator.wiring import find_repo

    repo = find_repo()
    settings = load(repo / CONFIG_NAME)
    for warning in systemd.preflight(settings):
        err().print(warning, markup=False, highlight=False)
    units = systemd.render_units(repo, settings, systemd.default_swarm_argv(), serve=serve)
    for line in systemd.install(units, print_only=print_only):
        print(line)
