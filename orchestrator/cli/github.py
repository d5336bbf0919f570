"""`swarm github hook install`: point the repository's webhook at `swarm serve`. What only this command needs is
imported inside it, so every other command starts fast."""

from __future__ import annotations

from typing import Annotated

import typer

from orchestrator.cli.apps import hook_app


@hook_app.command("install")
def hook_install(
    url: Annotated[str, typer.Option("--url", help="Where GitHub reaches `swarm serve`, e.g. "
                                                   "https://swarm.example.com/webhooks/github")],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be created or updated")] = False,
) -> None:
    """Create the repository's webhook for URL, or update the one already pointing there: JSON, the events
    `swarm serve` reads, signed with the secret in github.webhook_secret_env, active."""
    from urllib.parse import urlsplit

    from orchestrator.config import CONFIG_NAME, load
    from orchestrator.github_setup import HOOK_PATH, api_from, check_url, install_hook, webhook_secret
    from orchestrator.view import find_repo, register_secrets

    repo = find_repo()
    settings = load(repo / CONFIG_NAME)
    register_secrets(settings)
    check_url(url)
    secret = webhook_secret(settings)
    api = api_from(repo, settings)
    try:
        print(install_hook(api, url, secret, dry_run=dry_run).line())
    finally:
        api.close()
    if not urlsplit(url).path.rstrip("/").endswith(HOOK_PATH):
        print(f"note: `swarm serve` answers at {HOOK_PATH}; make sure a proxy forwards {url} there")
