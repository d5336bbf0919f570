"""The typer apps of `swarm` (the root and its groups) and the root options: every command module
registers on these, so they import nothing but typer."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer

app = typer.Typer(
    no_args_is_help=True, add_completion=True, pretty_exceptions_enable=False,
    help="Run a fleet of coding agents on one repository.",
)
monitor_app = typer.Typer(no_args_is_help=True, help="The token-free supervisor.")
registry_app = typer.Typer(no_args_is_help=True, help="Registry maintenance.")
app.add_typer(monitor_app, name="monitor")
app.add_typer(registry_app, name="registry")
systemd_app = typer.Typer(no_args_is_help=True, help="Run the monitor as systemd user services.")
app.add_typer(systemd_app, name="systemd")
discover_app = typer.Typer(no_args_is_help=True, help="Turn outside reports into tasks.")
app.add_typer(discover_app, name="discover")
github_app = typer.Typer(no_args_is_help=True, help="Set GitHub up for `swarm serve`.")
app.add_typer(github_app, name="github")
hook_app = typer.Typer(no_args_is_help=True, help="The repository's webhook to `swarm serve`.")
github_app.add_typer(hook_app, name="hook")


def setup_logging(verbose: bool) -> None:
    from monitor.redact import RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if verbose else logging.WARNING)


def _print_version(wanted: bool) -> None:
    if wanted:
        from importlib.metadata import PackageNotFoundError, version

        try:
            print(f"swarm {version('swarm')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            print("swarm (not installed: `pip install -e .` gives it a version)")
        raise typer.Exit(0)


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log what the monitor does.")] = False,
    _version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                           help="Print swarm's version and exit.")] = False,
) -> None:
    setup_logging(verbose)
    # The values of swarm's secrets (default variable names; a loaded config adds its own in build_world)
    # are masked in every log line, prompt and notification of this process.
    from orchestrator.config import Settings
    from orchestrator.view import register_secrets

    register_secrets(Settings())
