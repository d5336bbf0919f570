"""`swarm`: the user's command line. One module per command (or small group) registers on the apps of
``apps.py``; this one loads them all and maps errors to exit codes: 0 success, 1 operational failure,
2 bad usage or configuration. A command module imports what only it needs inside the command, so
`swarm --version` loads typer and little else."""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path

from orchestrator.cli.apps import app
from orchestrator.cli.output import err
from orchestrator.errors import OperationalError, UsageError

# The command modules, in the order `swarm --help` lists their commands: each registers on the apps.
COMMANDS = ("init", "spawn", "submit", "status", "monitor", "serve", "logs", "attach", "retry", "cancel", "cleanup",
            "merge", "doctor", "demo", "review", "learn", "agent_run", "discover", "github",
            "systemd", "registry", "budget", "proposals")
for _name in COMMANDS:
    importlib.import_module(f"orchestrator.cli.{_name}")


def load_credentials(environ: dict[str, str] | None = None) -> list[str]:
    """systemd ``LoadCredential=NAME:path`` puts each secret in a file under ``$CREDENTIALS_DIRECTORY``
    (readable only by this service, never in its environment listing); swarm reads secrets from the
    environment, so each file fills the variable of its name when that is unset. Returns the names."""
    env = os.environ if environ is None else environ
    directory = env.get("CREDENTIALS_DIRECTORY", "")
    loaded = []
    if directory and Path(directory).is_dir():
        for path in sorted(Path(directory).iterdir()):
            if path.is_file() and re.fullmatch(r"[A-Z][A-Z0-9_]*", path.name) and not env.get(path.name):
                env[path.name] = path.read_text(encoding="utf-8").strip()
                loaded.append(path.name)
    return loaded


def exit_code(exc: BaseException) -> int | None:
    """2 for bad usage or configuration, 1 for a failed operation, None for anything else. The config
    and registry errors are looked up only when their modules were loaded: else none was raised."""
    config = sys.modules.get("orchestrator.config")
    store = sys.modules.get("registry.store")
    if isinstance(exc, UsageError) or (config is not None and isinstance(exc, config.ConfigError)):
        return 2
    if isinstance(exc, OperationalError) or (store is not None and isinstance(exc, store.RegistryError)):
        return 1
    return None


def main() -> None:
    """Entry point: typer reports its own usage errors (exit 2); ours become one line and an exit code."""
    try:
        load_credentials()
        app()
    except Exception as exc:
        code = exit_code(exc)
        if code is not None:
            err().print(f"swarm: error: {exc}", markup=False, highlight=False)
            sys.exit(code)
        if not isinstance(exc, OSError):
            raise
        # ENOSPC, EIO, permissions: the registry write recipe left the old file intact
        where = f" ({exc.filename})" if exc.filename else ""
        err().print(f"swarm: error: {exc.strerror or exc}{where}; nothing was half-written, fix it and run again",
                    markup=False, highlight=False)
        sys.exit(1)
