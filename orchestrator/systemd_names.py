"""The names and paths of swarm's systemd units and the swarm command they run: what `swarm systemd
install` writes and what doctor, the wiring (review jobs) and the status line ask about, without loading
the unit renderer."""

from __future__ import annotations

import hashlib
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config import Settings
from orchestrator.errors import UsageError


@dataclass(frozen=True)
class UnitNames:
    slug: str  # the repository's instance name
    tmux: str
    service: str
    timer: str
    daemon: str
    monitor_env: Path
    agents_env: Path


# -- names and paths ------------------------------------------------------------------------------


def _slug(name: str, identity: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:32].strip("-") or "x"
    return f"{base}-{hashlib.sha256(identity.encode()).hexdigest()[:6]}"


def _config_home(environ: Mapping[str, str]) -> Path:
    xdg = environ.get("XDG_CONFIG_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg)
    home = environ.get("HOME") or str(Path.home())
    return Path(home) / ".config"


def user_unit_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Where systemd looks for the user's own units: ``$XDG_CONFIG_HOME/systemd/user``."""
    return _config_home(os.environ if environ is None else environ) / "systemd" / "user"


def _socket(repo: Path, settings: Settings) -> tuple[str, str]:
    """(tmux's socket option and value as argv text, the socket's unit instance name)."""
    socket = settings.monitor.tmux_socket
    if "/" not in socket:
        slug = socket if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", socket) else _slug(socket, socket)
        return f"-L {_exec_word(socket)}", slug
    path = Path(socket) if Path(socket).is_absolute() else repo / socket  # the monitor runs in the repo
    return f"-S {_exec_word(str(path))}", _slug(path.name, str(path))


def unit_names(repo: Path, settings: Settings, environ: Mapping[str, str] | None = None) -> UnitNames:
    """The unit and env file names for ``repo`` (an absolute path): what install writes, doctor asks about."""
    environ = os.environ if environ is None else environ
    slug = _slug(repo.name, str(repo))
    _option, socket_slug = _socket(repo, settings)
    swarm_config = _config_home(environ) / "swarm"
    return UnitNames(
        slug=slug, tmux=f"swarm-tmux-{socket_slug}.service", service=f"swarm-monitor-{slug}.service",
        timer=f"swarm-monitor-{slug}.timer", daemon=f"swarm-monitor-daemon-{slug}.service",
        monitor_env=swarm_config / f"monitor-{slug}.env", agents_env=swarm_config / f"agents-{socket_slug}.env",
    )


def default_swarm_argv(executable: str = sys.executable) -> list[str]:
    """The swarm command as an absolute argv: the console script next to this Python, else ``python -c``."""
    python = Path(executable).absolute()  # not resolved: a venv's python is a symlink that must stay one
    script = python.with_name("swarm")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(python), "-c", "from orchestrator.cli import main; main()"]


# -- systemd syntax -------------------------------------------------------------------------------


def _check_text(text: str) -> str:
    if any(ch in text for ch in "\n\r\0") or text.endswith("\\"):
        raise UsageError(f"{text!r} cannot be written into a systemd unit (a newline, NUL or trailing backslash)")
    return text


def _exec_word(arg: str) -> str:
    """One argument of ``ExecStart=``: systemd expands ``%`` specifiers and ``$`` variables and splits on
    whitespace, so both are escaped and anything unusual is double-quoted (C escapes inside)."""
    escaped = _check_text(arg).replace("%", "%%").replace("$", "$$")
    if escaped and re.fullmatch(r"[A-Za-z0-9_@%+=:,./-]+", escaped):
        return escaped
    return '"' + escaped.replace("\\", "\\\\").replace('"', '\\"') + '"'
