"""`swarm systemd install`: the monitor as systemd user units, rendered with this machine's absolute paths.

Why units and not just "run the daemon in a terminal": a timer survives logouts (with lingering), reboots
and crashes, and a one-shot started by a timer can never overlap itself. The one trap is tmux. Agents are
children of the tmux server, and systemd kills a unit's whole cgroup when it stops: a tmux server first
started by a monitor tick would live in the tick's cgroup and die, agents and all, when the tick ends.
So the server gets a unit of its own, ``swarm-tmux-<socket>.service`` (``tmux -D``: the server in the
foreground as the unit's main process), which the monitor units require and order after but never stop.
Killing, restarting or stopping a monitor unit therefore never touches an agent.

Names. Several repositories may share one machine (and one tmux socket), so every unit name carries an
instance: the repository's slug (``<dir name>-<6 hex of its absolute path>``) for the monitor units, the
socket's for the tmux unit, which repositories on the same socket share (rendered identically):

* ``swarm-tmux-<socket>.service``            owns the agents' tmux server
* ``swarm-monitor-<repo>.service``           one tick (``swarm monitor run-once``), with a start timeout
* ``swarm-monitor-<repo>.timer``             starts it every ``[monitor] interval``
* ``swarm-monitor-daemon-<repo>.service``    the long-running alternative (conflicts with the timer)

Secrets never go into a unit. Two ``EnvironmentFile=``s, created empty with mode 0600 under
``~/.config/swarm/`` and never overwritten: ``monitor-<repo>.env`` holds swarm's own secrets (GitHub,
Slack, Sentry), ``agents-<socket>.env`` the agents' model keys, since agents inherit the environment of
whoever started the tmux server. ``LoadCredential=`` was not used: swarm reads its secrets from the
environment, and credentials would only reach it through a wrapper script.

Hardening keeps what the monitor needs visible: no ``PrivateTmp=`` (the socket is in /tmp/tmux-UID), no
``ProtectHome=`` (the repository and worktrees are usually in the home directory), no other
mount-namespace option (in user units they need unprivileged user namespaces, which many hosts lack).
What remains is seccomp and no_new_privs, which any user manager can apply.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from string import Template

from monitor.durations import format_duration
from monitor.world import proc
from monitor.world.tmux import Tmux, TmuxError
from orchestrator.config import ConfigError, Settings
from orchestrator.errors import UsageError
from orchestrator.systemd_names import (
    UnitNames,
    _check_text,
    _exec_word,
    _socket,
    default_swarm_argv,
    unit_names,
    user_unit_dir,
)
from orchestrator.systemd_status import SystemctlRunner, timer_status

TEMPLATES = Path(__file__).resolve().parent.parent / "systemd"  # unit templates, in the source checkout
_HEADER = "# Rendered by `swarm systemd install` for ${header_for}: re-run it rather than editing this file.\n"
_AGENT_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")


@dataclass(frozen=True)
class Units:
    """What `install` writes: unit files (name -> text) and env files (path -> initial text)."""

    names: UnitNames
    files: Mapping[str, str]
    env_files: Mapping[Path, str]


# -- names and paths ------------------------------------------------------------------------------


# -- systemd syntax -------------------------------------------------------------------------------


def _exec_line(argv: Sequence[str]) -> str:
    if not argv or not Path(argv[0]).is_absolute():
        raise UsageError(f"the command must start with an absolute path, got {list(argv)!r}")
    return " ".join(_exec_word(arg) for arg in argv)


def _value(text: str) -> str:
    """A whole-line value (a path, a description): only ``%`` specifiers need escaping."""
    return _check_text(text).replace("%", "%%")


def _environment(environ: Mapping[str, str]) -> str:
    """PATH (agents and CI find their tools as in your shell) and TMUX_TMPDIR (the same socket as your
    shell's `swarm attach`), as they are now: a user manager's own PATH is much shorter."""
    lines = []
    for name in ("PATH", "TMUX_TMPDIR"):
        value = environ.get(name, "")
        if name == "PATH":
            value = ":".join(dict.fromkeys(part for part in value.split(":") if part))
        if value:
            quoted = _value(f"{name}={value}").replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'Environment="{quoted}"')
    return "\n".join(lines) or "# (no PATH in the environment of `swarm systemd install`)"


def _span(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    return f"{seconds // 60}min" if seconds % 60 == 0 else f"{seconds}s"


def schedule(interval: float) -> tuple[str, str]:
    """The ``[Timer]`` lines for a tick every ``interval`` seconds, and a comment that says why.

    ``Persistent=`` (run a tick missed while the machine was off) works only with ``OnCalendar=``, and a
    calendar expression is evenly spaced only when the interval divides the minute, hour or day. Other
    intervals get a monotonic timer: exact spacing, and a first tick shortly after each boot instead."""
    seconds = round(interval)
    if seconds < 1:
        raise ConfigError(f"monitor.interval: {interval:g}s is too short for a timer (at least 1s)")
    minutes, hours = seconds // 60, seconds // 3600
    calendar = None
    if seconds < 60 and 60 % seconds == 0:
        calendar = f"*:*:0/{seconds}"
    elif seconds % 60 == 0 and minutes < 60 and 60 % minutes == 0:
        calendar = f"*:0/{minutes}"
    elif seconds % 3600 == 0 and hours <= 24 and 24 % hours == 0:
        calendar = f"0/{hours}:00:00"
    if calendar is not None:
        return (f"OnCalendar={calendar}\nPersistent=true",
                "OnCalendar= with Persistent=true: a tick missed while the machine was off runs at boot.")
    return (f"OnActiveSec=1min\nOnUnitActiveSec={_span(seconds)}",
            f"Every {format_duration(seconds)} has no evenly spaced calendar expression (that needs a divisor of "
            "a minute, an hour or a day), so a monotonic timer keeps the spacing exact. Persistent= only applies "
            "to OnCalendar=: here the first tick comes a minute after boot instead.")


def tick_timeout(interval: float) -> int:
    """How long one tick may take: twice the interval, at least 5 minutes, at most an hour."""
    return int(min(max(2 * interval, 300), 3600))


def preflight(settings: Settings) -> list[str]:
    """Warnings worth printing before `install`: a tmux without ``-D`` (before 3.2), or a tmux server
    already running on the socket, which ``swarm-tmux`` cannot adopt if something else started it."""
    warnings: list[str] = []
    try:
        version = proc.run(["tmux", "-V"], timeout=10).stdout
    except (OSError, proc.ProcTimeout):
        version = ""
    found = re.search(r"(\d+)\.(\d+)", version)
    if found is None or (int(found.group(1)), int(found.group(2))) < (3, 2):
        warnings.append(f"warning: swarm-tmux needs tmux 3.2 or later (`tmux -D`), this is {version.strip() or 'none'}")
    socket = settings.monitor.tmux_socket
    try:
        running = Tmux(socket).server_running()
    except TmuxError:
        running = False
    if running:
        warnings.append(f"note: a tmux server already runs on socket {socket}: unless the swarm-tmux unit started "
                        "it, that unit refuses to start until the server is gone (its agents finished, or kill-server)")
    return warnings


# -- render and install ---------------------------------------------------------------------------


def _template(name: str) -> Template:
    """A unit template from ``systemd/``, without its ``##`` notes (which are for readers of the template)."""
    try:
        text = (TEMPLATES / name).read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read the unit template {TEMPLATES / name} ({exc.strerror or exc}): install swarm "
                         "from its source checkout with `pip install -e`") from None
    return Template("".join(line for line in text.splitlines(keepends=True) if not line.startswith("##")))


def _shell_script(tmux: str, option: str, *, refuse: bool) -> str:
    probe = f"{shlex.quote(tmux)} {option} -N start-server 2>/dev/null"  # -N: ask, never start a server
    if not refuse:
        return _exec_line(["/bin/sh", "-c", f"until {probe}; do sleep 0.1; done"])
    message = (f"swarm-tmux: a tmux server already runs on this socket outside this unit; end it "
               f"({tmux} {option} kill-server, which ends its sessions) or let its agents finish, then start again")
    return _exec_line(["/bin/sh", "-c", f"if {probe}; then echo {shlex.quote(message)} >&2; exit 1; fi"])


def render_units(
    repo: Path,
    settings: Settings,
    swarm_argv: Sequence[str],
    *,
    tmux: str | None = None,
    environ: Mapping[str, str] | None = None,
    serve: bool = False,
) -> Units:
    """The four units for ``repo`` (absolute) run by ``swarm_argv`` (absolute, e.g. `default_swarm_argv`).

    ``tmux`` defaults to the tmux on PATH; ``environ`` (default: this process's) supplies PATH,
    TMUX_TMPDIR and the config home. Pure otherwise: nothing is written."""
    environ = os.environ if environ is None else environ
    if not repo.is_absolute():
        raise UsageError(f"the repository path must be absolute, got {repo}")
    tmux = tmux or shutil.which("tmux", path=environ.get("PATH"))
    if tmux is None:
        raise UsageError("tmux is not on PATH: install it (apt-get install tmux), then run this again")
    tmux = str(Path(tmux).absolute())
    names = unit_names(repo, settings, environ)
    option, _ = _socket(repo, settings)
    tmux_argv = f"{_exec_line([tmux])} {option}"
    interval = settings.monitor.interval
    timer_lines, schedule_comment = schedule(interval)
    fields = {
        "repo": _value(str(repo)), "repo_text": _value(str(repo)),
        "environment": _environment(environ), "monitor_env": _value(str(names.monitor_env)),
        "agents_env": _value(str(names.agents_env)), "agents_env_comment": _check_text(str(names.agents_env)),
        "tmux_unit": names.tmux, "timer_unit": names.timer, "service_unit": names.service,
        "tmux": tmux_argv, "socket_comment": _check_text(settings.monitor.tmux_socket),
        "socket_text": _value(settings.monitor.tmux_socket),
        "refuse_foreign": _shell_script(tmux, option, refuse=True),
        "wait_ready": _shell_script(tmux, option, refuse=False),
        "run_once": _exec_line([*swarm_argv, "monitor", "run-once"]),
        "daemon": _exec_line([*swarm_argv, "monitor", "daemon"]),
        "tick_timeout": _span(tick_timeout(interval)), "schedule": timer_lines, "schedule_comment": schedule_comment,
        "interval_text": format_duration(interval),
        "serve": _exec_line([*swarm_argv, "serve"]), "serve_interval": "10 minutes", "daemon_unit": names.daemon,
    }
    header = Template(_HEADER).substitute(header_for=_check_text(str(repo)))
    files = {
        names.tmux: Template(_HEADER).substitute(header_for="every repository on this socket")
        + _template("swarm-tmux.service").substitute(fields),
        names.service: header + _template("swarm-monitor.service").substitute(fields),
        names.timer: header + _template("swarm-monitor.timer").substitute(fields),
        names.daemon: header + _template("swarm-monitor-daemon.service").substitute(fields),
    }
    if serve:  # `swarm systemd install --serve`: the service, instead of the timer or the daemon
        files[serve_unit(names)] = header + _template("swarm-serve.service").substitute(fields)
    own = [*settings.secret_env_names(), settings.llm.api_key_env]  # the LLM key: swarm's planning and reviews
    secrets = "\n".join(f"#{name}=" for name in dict.fromkeys(own))
    env_files = {
        names.monitor_env: (
            f"# swarm's own secrets for the monitor of {repo}, read by {names.service} and\n"
            f"# {names.daemon}. One NAME=value per line; keep this file mode 0600. Agents never see it.\n"
            f"{secrets}\n"),
        names.agents_env: (
            f"# The agents' environment on tmux socket {settings.monitor.tmux_socket} ({names.tmux}): their model\n"
            "# keys, one NAME=value per line; keep this file mode 0600. Never put swarm's own secrets (GITHUB_TOKEN,\n"
            f"# ...) here: every agent would see them. A change needs a restart of {names.tmux},\n"
            "# which ends every running agent.\n" + "".join(f"#{name}=\n" for name in _AGENT_KEYS)),
    }
    return Units(names=names, files=files, env_files=env_files)


def serve_unit(names: UnitNames) -> str:
    """``swarm-serve-<repo>.service``: `swarm serve` (conflicts with the timer and the daemon)."""
    return f"swarm-serve-{names.slug}.service"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def _ensure_env_file(path: Path, text: str) -> str:
    """Create ``path`` with mode 0600 unless it exists (then only tighten its mode): never overwrite."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            os.chmod(path, 0o600)
            return f"kept {path}, mode tightened from {mode:04o} to 0600"
        return f"kept {path} (mode {mode:04o})"
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    return f"created {path} (mode 0600, no values yet)"


def install(units: Units, unit_dir: Path | None = None, print_only: bool = False) -> list[str]:
    """Write the units into ``unit_dir`` (default `user_unit_dir`) and create missing env files; with
    ``print_only`` write nothing and return the units' text instead. Returns the lines to print,
    ending with the commands to run next."""
    unit_dir = unit_dir or user_unit_dir()
    names = units.names
    lines: list[str] = []
    for name, text in units.files.items():
        path = unit_dir / name
        if print_only:
            lines += [f"# ---- {path}", *text.splitlines(), ""]
            continue
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        if old == text:
            lines.append(f"unchanged {path}")
            continue
        unit_dir.mkdir(parents=True, exist_ok=True)
        _write_atomic(path, text)
        lines.append(f"wrote {path}")
        if old is not None and name == names.tmux:
            lines.append(f"  a running {name} keeps its old settings until restarted, and a restart ends every "
                         "agent: restart it only when none is running")
    for env_path, text in units.env_files.items():
        if print_only:
            state = "exists, left as is" if env_path.exists() else "would be created empty, mode 0600"
            lines.append(f"# {env_path}: {state}")
        else:
            lines.append(_ensure_env_file(env_path, text))
    serve = serve_unit(names)
    if serve in units.files:
        lines += [
            f"secrets: swarm's own (GITHUB_TOKEN, Slack, Sentry, the webhook secret SWARM_GITHUB_WEBHOOK_SECRET) in "
            f"{names.monitor_env}, the agents' model keys in {names.agents_env}",
            "next:",
            "  systemctl --user daemon-reload",
            f"  systemctl --user disable --now {names.timer} {names.daemon}   # serve replaces them",
            f"  systemctl --user enable --now {names.tmux} {serve}",
            "  loginctl enable-linger        # start them at boot and keep them running after you log out",
            f"check: swarm status; journalctl --user -u {serve}",
        ]
    else:
        lines += [
            f"secrets: swarm's own (GITHUB_TOKEN, Slack, Sentry) in {names.monitor_env}, "
            f"the agents' model keys in {names.agents_env}",
            "next:",
            "  systemctl --user daemon-reload",
            f"  systemctl --user enable --now {names.tmux} {names.timer}",
            "  loginctl enable-linger        # start them at boot and keep them running after you log out",
            f"or, instead of the timer, the long-running daemon: systemctl --user enable --now {names.daemon}",
            f"check: systemctl --user list-timers {names.timer}; journalctl --user -u {names.service}",
        ]
    if print_only:
        lines.append("(--print: nothing was written)")
    return lines


__all__ = [  # timer_status lived here before systemd_status.py: it stays importable from this module
    "TEMPLATES", "SystemctlRunner", "UnitNames", "Units", "default_swarm_argv", "install", "preflight",
    "render_units", "schedule", "serve_unit", "tick_timeout", "timer_status", "unit_names", "user_unit_dir",
]
