"""The tmux CLI, wrapped thinly.

Agents run in tmux sessions on a private server (``tmux -L NAME`` or ``tmux -S PATH``) so that a
human can attach to any of them and so that they outlive the monitor process. This module is the only
place that speaks tmux; it goes through :func:`monitor.world.proc.run` (argv lists, a timeout on every
call, never a shell) rather than libtmux, so every command is visible, bounded and easy to fake.

Two tmux habits it guards against:

* Target matching is fuzzy: ``-t task-1`` finds ``task-12`` by prefix. Every target here is exact:
  ``=NAME`` for session targets and ``=NAME:`` for pane targets (tmux 3.3a resolves a bare ``=NAME``
  as a pane target to "can't find pane").
* A pane whose command exits is normally destroyed along with its exit status. ``remain-on-exit`` is
  switched on globally before the first session is created, so a finished agent's pane stays, marked
  dead, with ``pane_dead_status`` readable by :meth:`Tmux.panes`.

Two isolation rules live here too, because every tmux command goes through :meth:`Tmux._run`:

* Secrets: a tmux server copies the environment of the client that starts it into its global
  environment, and every pane inherits that. ``hide_env`` names (swarm's own tokens) are removed from the
  environment of every tmux command, so a server swarm starts never holds them, and each launch also
  unsets them from the global environment of a server an older swarm started with them.
* Ownership: several repositories may share one socket (and task ids, so session names). Each session
  is tagged with the user option ``@swarm_repo`` = the owning repository; a ``Tmux`` made with an
  ``owner`` sees, kills and reuses only its own sessions (untagged ones from an older swarm count as its
  own when their start directory lies under one of ``roots``, its worktree root).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from monitor.world import proc

log = logging.getLogger(__name__)
_warned_servers: set[str] = set()  # sockets already warned about in this process

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_PANE_FORMAT = "#{session_name}\t#{pane_dead}\t#{pane_pid}\t#{pane_dead_status}\t#{session_path}\t#{@swarm_repo}"
_SESSION_FORMAT = "#{session_name}\t#{session_path}\t#{@swarm_repo}"
OWNER_OPTION = "@swarm_repo"
# Always dropped from tmux's environment: an enclosing tmux client's variables would redirect this one.
_CLIENT_VARS = ("TMUX", "TMUX_PANE")
HISTORY_LIMIT = 50000
# What tmux 3.3a prints when nothing listens on the socket (a missing socket file or a stale one), or
# when the server went away while answering (for example just after kill-server).
_NO_SERVER = ("no server running", "no such file or directory", "connection refused", "server exited")
# "no current target": the server is up (exit-empty off) but has no session at all.
_NO_TARGET = ("can't find session", "can't find pane", "can't find window", "session not found", "no current target")


class TmuxError(Exception):
    """A tmux command failed (for a reason other than a missing server or session)."""


class ForeignSession(TmuxError):
    """The session name is taken on this socket by another repository's session."""


class TmuxUnavailable(TmuxError):
    """The tmux server cannot be reached for a reason other than "no server running" (the tmux binary is
    missing, the socket is not accessible, a command hung), so nothing can be said about its sessions."""


@dataclass(frozen=True)
class Pane:
    session: str
    dead: bool
    pid: int | None
    dead_status: int | None
    repo: str = field(default="", compare=False)  # the @swarm_repo tag ("" from an older swarm)
    path: str = field(default="", compare=False)  # the session's start directory


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid tmux session name {name!r}: must match {_NAME.pattern}")
    return name


def _int_or_none(text: str) -> int | None:
    text = text.strip()
    try:
        return int(text) if text else None
    except ValueError:
        return None


class Tmux:
    def __init__(
        self,
        socket: str,
        timeout: float = 10.0,
        *,
        owner: str = "",
        roots: Sequence[Path] = (),
        hide_env: Sequence[str] = (),
    ) -> None:
        """``socket`` is a server name (``tmux -L NAME``) or, if it contains ``/``, a socket path
        (``tmux -S PATH``). ``owner`` (the repository path) tags the sessions this object launches and
        limits what it sees and kills to them; without it every session counts (doctor, tests).
        ``hide_env`` names variables no tmux server or pane may get from swarm."""
        if not socket:
            raise ValueError("empty tmux socket name")
        if owner and (any(c in owner for c in "\t\n\r") or owner.rstrip().endswith(";")):
            raise ValueError(f"repository path {owner!r} has a tab, a newline or a trailing ';', which tmux "
                             "cannot keep in a session tag: move the repository to a plainer path")
        for name in hide_env:
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"invalid environment variable name {name!r}")
        self.socket = socket
        self.timeout = timeout
        self.owner = owner
        self.roots = tuple(str(Path(root)) for root in roots)
        self.hide_env = tuple(dict.fromkeys(hide_env))

    def owns(self, repo: str, path: str) -> bool:
        """Whether a session with this tag and start directory belongs to this object's repository."""
        if not self.owner:
            return True
        if repo:
            return repo == self.owner
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in self.roots)

    # -- plumbing --------------------------------------------------------------------------------

    def _base(self) -> list[str]:
        return ["tmux", "-S", self.socket] if "/" in self.socket else ["tmux", "-L", self.socket]

    def _run(self, *args: str) -> proc.Result:
        # Drop the variables of an enclosing tmux client so they cannot redirect or confuse this one, and
        # swarm's secrets, so a server started by this command never holds them.
        drop = {*_CLIENT_VARS, *self.hide_env}
        env = {k: v for k, v in os.environ.items() if k not in drop}
        try:
            return proc.run([*self._base(), *args], timeout=self.timeout, env=env)
        except proc.ProcTimeout as exc:
            raise TmuxUnavailable(str(exc)) from exc
        except OSError as exc:  # tmux not installed, not executable, ...
            raise TmuxUnavailable(f"cannot run tmux: {exc}") from exc

    @staticmethod
    def _no_server(result: proc.Result) -> bool:
        err = result.stderr.lower()
        return not result.ok and any(marker in err for marker in _NO_SERVER)

    @staticmethod
    def _no_target(result: proc.Result) -> bool:
        err = result.stderr.lower()
        return not result.ok and any(marker in err for marker in _NO_TARGET)

    def _fail(self, result: proc.Result) -> TmuxError:
        message = proc.tail(result.output, 3, 400).strip() or f"exit status {result.returncode}"
        text = f"`{' '.join(result.argv)}` failed: {message}"
        if "error connecting" in result.stderr.lower() or "server exited" in result.stderr.lower():
            return TmuxUnavailable(text)
        return TmuxError(text)

    # -- queries ---------------------------------------------------------------------------------

    def server_running(self) -> bool:
        """Whether a server answers on the socket (raises :class:`TmuxUnavailable` if that is unknowable)."""
        return self.panes() is not None

    def panes(self) -> dict[str, Pane] | None:
        """Every session's first pane, in one tmux call.

        ``None`` means no server is running on the socket: the caller must treat that as "unknown" (for
        example after a reboot), never as "every session died". Other failures raise
        :class:`TmuxUnavailable`."""
        result = self._run("list-panes", "-a", "-F", _PANE_FORMAT)
        if self._no_server(result):
            return None
        if self._no_target(result):
            return {}
        if not result.ok:
            raise TmuxUnavailable(str(self._fail(result)))
        panes: dict[str, Pane] = {}
        for line in result.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) != 6:
                continue  # a foreign session whose name or path holds a tab: never one of ours
            session, dead, pid, status, path, repo = parts
            if session not in panes and self.owns(repo, path):  # list-panes -a: the first pane counts
                panes[session] = Pane(session, dead.strip() == "1", _int_or_none(pid), _int_or_none(status),
                                      repo, path)
        return panes

    def session_owner(self, name: str) -> tuple[str, str] | None:
        """(@swarm_repo tag, start directory) of session ``name``, or None if there is no such session."""
        _check_name(name)
        result = self._run("list-sessions", "-F", _SESSION_FORMAT)
        if self._no_server(result) or self._no_target(result):
            return None
        if not result.ok:
            raise self._fail(result)
        for line in result.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) == 3 and parts[0] == name:
                return parts[2], parts[1]
        return None

    def has_session(self, name: str) -> bool:
        """Whether session ``name`` exists and belongs to this object's repository."""
        if self.owner:
            found = self.session_owner(name)
            return found is not None and self.owns(*found)
        result = self._run("has-session", "-t", f"={_check_name(name)}")
        if result.ok:
            return True
        if self._no_server(result) or self._no_target(result):
            return False
        raise self._fail(result)

    def _foreign(self, name: str) -> str | None:
        """The repository owning session ``name`` when that is not this one (None: ours or absent)."""
        if not self.owner:
            return None
        found = self.session_owner(name)
        if found is None or self.owns(*found):
            return None
        return found[0] or found[1]

    def capture(self, name: str, lines: int = 200) -> str:
        """The last ``lines`` lines of scrollback plus the visible screen of the session's pane, wrapped
        lines joined, trailing blank lines dropped; ``""`` if there is no such session."""
        if lines < 0:
            raise ValueError("lines must be >= 0")
        result = self._run("capture-pane", "-p", "-J", "-t", f"={_check_name(name)}:", "-S", f"-{lines}")
        if self._no_server(result) or self._no_target(result):
            return ""
        if not result.ok:
            raise self._fail(result)
        text = result.stdout.rstrip()
        return text + "\n" if text else ""

    def attach_argv(self, name: str) -> list[str]:
        """An argv a CLI can exec to attach a terminal to the session."""
        return [*self._base(), "attach-session", "-t", f"={_check_name(name)}"]

    # -- actions ---------------------------------------------------------------------------------

    def launch(self, name: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
        """Start ``argv`` in a new detached session ``name`` (220x50) in ``cwd``; no-op if it exists.

        ``argv`` is handed to tmux as separate arguments, so tmux execs it directly with no ``sh -c``:
        shell syntax in it stays literal. ``env`` adds variables for that command through
        ``new-session -e VAR=VALUE``; those values appear in the tmux command line (visible in ``ps``),
        so callers must never pass secrets in ``env``.

        One tmux invocation starts the server if needed and sets ``remain-on-exit`` and
        ``history-limit`` globally before the session exists, so even a command that exits at once
        leaves a dead pane with its exit status. ``exit-empty off`` keeps the server up when its last
        session ends: an absent server then means a reboot or a hidden socket, never "the last agent
        finished" — the monitor treats the former as unknown and the latter as a plain exit."""
        _check_name(name)
        argv = list(argv)
        if not argv or not all(isinstance(arg, str) for arg in argv):
            raise ValueError("argv must be a non-empty list of strings")
        if not Path(cwd).is_dir():
            raise ValueError(f"cwd {cwd} is not a directory")
        env_args: list[str] = []
        for key, value in (env or {}).items():
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"invalid environment variable name {key!r}")
            env_args += ["-e", f"{key}={value}"]
        foreign = self._foreign(name)
        if foreign is not None:
            raise ForeignSession(
                f"tmux session {name} on socket {self.socket} belongs to {foreign}, another repository: give "
                "this repository its own [monitor] tmux_socket (or remove that line to get the per-repository default)"
            )
        if self.has_session(name):
            return
        # An older swarm may have started the server with its secrets: unset them before the pane starts.
        unset: list[str] = []
        for key in self.hide_env:
            unset += ["set-environment", "-g", "-u", key, ";"]
        tag = [";", "set-option", "-t", f"={name}:", OWNER_OPTION, self.owner] if self.owner else []
        result = self._run(
            "start-server", ";",
            "set-option", "-g", "exit-empty", "off", ";",
            "set-option", "-g", "remain-on-exit", "on", ";",
            "set-option", "-g", "history-limit", str(HISTORY_LIMIT), ";",
            *unset,
            "new-session", "-d", "-s", name, "-c", str(cwd), "-x", "220", "-y", "50", *env_args,
            "--", *argv, *tag,
        )  # fmt: skip
        if result.ok or "duplicate session" in result.stderr.lower():  # lost a race: it exists now
            self._warn_if_server_holds_secrets(name)
            return
        raise self._fail(result)

    def server_held_secrets(self, name: str) -> list[str]:
        """``hide_env`` names in the tmux server's own process environment (Linux ``/proc``): a server an
        older swarm started keeps them there, out of its panes but readable by any process of this user."""
        if not self.hide_env:
            return []
        result = self._run("display-message", "-p", "-t", f"={_check_name(name)}:", "#{pid}")
        pid = _int_or_none(result.stdout) if result.ok else None
        if pid is None:
            return []
        try:
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return []
        held = {item.partition(b"=")[0].decode(errors="replace") for item in raw.split(b"\0") if item}
        return [key for key in self.hide_env if key in held]

    def _warn_if_server_holds_secrets(self, name: str) -> None:
        try:
            held = self.server_held_secrets(name)
        except TmuxError:
            return
        if held and self.socket not in _warned_servers:
            _warned_servers.add(self.socket)
            log.warning("the tmux server on socket %s was started (by an older swarm) with %s in its environment: "
                        "its panes no longer get them, but its process still holds them; restart it when no agent "
                        "runs (`%s kill-server`)", self.socket, ", ".join(held), " ".join(self._base()))

    def kill(self, name: str) -> bool:
        """Kill exactly the session ``name``; False if it did not exist or belongs to another repository."""
        _check_name(name)
        if self._foreign(name) is not None:
            return False
        result = self._run("kill-session", "-t", f"={name}")
        if result.ok:
            return True
        if self._no_server(result) or self._no_target(result):
            return False
        raise self._fail(result)

    def kill_server(self) -> None:
        """Kill the server and every session on it, and wait (up to the timeout) until it has gone;
        nothing to do if none is running."""
        result = self._run("kill-server")
        if not result.ok and not self._no_server(result):
            raise self._fail(result)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline and not self._no_server(self._run("list-sessions")):
            time.sleep(0.02)
        # tmux 3.3 leaves the dead server's socket file behind; once the server is gone it is only litter.
        with contextlib.suppress(OSError):
            self.socket_path().unlink()

    def socket_path(self) -> Path:
        if "/" in self.socket:
            return Path(self.socket)
        # where tmux itself puts it: $TMUX_TMPDIR, else /tmp (tmux ignores TMPDIR)
        return Path(os.environ.get("TMUX_TMPDIR") or "/tmp") / f"tmux-{os.getuid()}" / self.socket  # noqa: S108
