"""`swarm registry restore`: registry maintenance. What only this command needs is imported inside it, so every
other command starts fast."""

from __future__ import annotations

from orchestrator.cli.apps import registry_app
from orchestrator.cli.output import console


@registry_app.command("restore")
def registry_restore() -> None:
    """Replace a damaged registry.json with the last good copy (the damaged file is kept aside)."""
    from orchestrator.wiring import load_world

    _settings, world = load_world()
    state = world.registry.restore_backup()
    console().print(f"restored {len(state.tasks)} task(s) from the backup (serial {state.serial})")
