"""The monitor's side of an attempt's push gate (:mod:`monitor.runtime.gitgate`): start it, bring what the
agent pushed into the task's branch, stop it.

Why a detached process per attempt and not a route in ``swarm serve``: the gate must answer for as long
as the agent runs, and the monitor is often not a server at all (``swarm monitor run-once`` from a timer
comes and goes; ``serve`` may not run, or may listen where the engine's host cannot reach). One process
per attempt also gives each token its own lifetime: it exists in that process's memory, in the one-shot
file it was handed through (deleted at once) and in the container's credential file, and nowhere once
the attempt ends and :func:`stop` has run.

Landing: the agent's pushes stay in the attempt's staging repository until the attempt ends; then the
monitor fast-forwards the local branch to them when they are ahead (never anything else: a branch that
moved elsewhere keeps its commits). On the usual exit the container's branch is fetched anyway and is
the truth; the gate matters when a container ends before that fetch (killed, its host gone): what its
agent pushed is kept.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.files import read_json
from monitor.private import private_dir, write_private, write_secret_once
from monitor.runtime.base import RuntimeFailure
from monitor.runtime.gitgate import GATE_DIR, SPEC, STAGING, STATE, STOP, TOKEN_FILE, prepare
from monitor.world import proc
from monitor.world.proc import pid_alive

log = logging.getLogger(__name__)

START_TIMEOUT = 15.0
_PASS_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "PYTHONPATH", "VIRTUAL_ENV")


@dataclass(frozen=True)
class PushSettings:
    """A host's ``push_credential``: where the gate listens, the address the container reaches it at, and
    whether a non-fast-forward push is taken."""

    listen: str = "127.0.0.1"
    host: str = ""  # "" = listen
    allow_force: bool = False


@dataclass(frozen=True)
class Access:
    url: str
    token: str

    def credential_line(self) -> str:
        """The line ``git credential-store`` reads for this URL (user "swarm", the token as password)."""
        scheme, _, rest = self.url.partition("://")
        return f"{scheme}://swarm:{self.token}@{rest.split('/', 1)[0]}\n"


def _git(cwd: Path, *args: str) -> str:
    done = proc.run(["git", "-C", str(cwd), *args], timeout=120)
    if not done.ok:
        raise RuntimeFailure(f"git {args[0]} in {cwd}: {done.stderr.strip()[-300:]}")
    return done.stdout.strip()


def start(run_dir: Path, worktree: Path, branch: str, push: PushSettings, python: str = sys.executable) -> Access:
    """A fresh gate for the attempt of ``run_dir`` (a running one is stopped first: a new token each time)."""
    from monitor.redact import register_secret_values

    stop(run_dir, keep=True)
    gate_dir = private_dir(run_dir / GATE_DIR)
    (gate_dir / STOP).unlink(missing_ok=True)
    (gate_dir / STATE).unlink(missing_ok=True)  # the old gate's: the new one's port is waited for below
    objects = Path(_git(worktree, "rev-parse", "--path-format=absolute", "--git-common-dir")) / "objects"
    try:
        prepare(gate_dir / STAGING, objects, branch, _git(worktree, "rev-parse", "HEAD"), allow_force=push.allow_force)
    except (RuntimeError, OSError) as exc:
        raise RuntimeFailure(f"the push gate's staging repository could not be made: {exc}") from exc
    path = "/" + branch.replace("/", "-") + ".git"
    write_private(gate_dir / SPEC, json.dumps({"staging": str(gate_dir / STAGING), "branch": branch,
                                               "listen": push.listen, "path": path}))
    token = secrets.token_urlsafe(32)
    register_secret_values([token])  # masked in every log line of this process
    write_secret_once(gate_dir / TOKEN_FILE, {"token": token})
    env = {key: os.environ[key] for key in _PASS_ENV if key in os.environ}
    # sh puts the gate in the background and exits: the gate outlives this process and is nobody's zombie
    done = proc.run(["/bin/sh", "-c", '"$@" </dev/null >>"$0" 2>&1 &', str(gate_dir / "gate.log"), python, "-m",
                     "monitor.runtime.gitgate", str(run_dir)], timeout=10, env=env, cwd=gate_dir)
    if not done.ok:
        raise RuntimeFailure(f"the push gate did not start: {done.stderr.strip()[-300:]}")
    deadline = time.monotonic() + START_TIMEOUT
    while int((read_json(gate_dir / STATE) or {}).get("port", 0) or 0) <= 0:
        if time.monotonic() > deadline or (not (gate_dir / TOKEN_FILE).exists() and _failed(gate_dir)):
            with contextlib.suppress(FileNotFoundError):
                (gate_dir / TOKEN_FILE).unlink()
            logged = gate_dir / "gate.log"
            tail = logged.read_text(errors="replace")[-300:] if logged.exists() else ""
            raise RuntimeFailure(f"the push gate did not listen on {push.listen}: {tail.strip()}")
        time.sleep(0.02)
    port = int((read_json(gate_dir / STATE) or {}).get("port", 0))
    return Access(f"http://{push.host or push.listen}:{port}{path}", token)


def _failed(gate_dir: Path) -> bool:
    """The gate took its token and ended without listening (its log says why)."""
    return (gate_dir / "gate.log").exists() and b"Traceback" in (gate_dir / "gate.log").read_bytes()


def running(run_dir: Path) -> bool:
    state = read_json(run_dir / GATE_DIR / STATE) or {}
    return pid_alive(int(state.get("pid", 0) or 0))


def stop(run_dir: Path, *, keep: bool = False) -> None:
    """Stop the attempt's gate (its token dies with it) and, unless ``keep``, remove its staging repository."""
    gate_dir = run_dir / GATE_DIR
    if not gate_dir.is_dir():
        return
    (gate_dir / STOP).touch()
    deadline = time.monotonic() + 3.0
    while running(run_dir) and time.monotonic() < deadline:
        time.sleep(0.05)
    (gate_dir / TOKEN_FILE).unlink(missing_ok=True)
    if not keep:
        shutil.rmtree(gate_dir / STAGING, ignore_errors=True)


def land(run_dir: Path, worktree: Path, branch: str) -> bool:
    """Fast-forward the local ``branch`` (checked out in ``worktree``) to what the agent pushed through the
    gate, when that is ahead of it; True when it moved. Anything else (nothing pushed, already there, a
    push that is not a descendant) leaves the branch as it is."""
    staging = run_dir / GATE_DIR / STAGING
    if not (staging / "HEAD").exists():
        return False
    pushed = proc.run(["git", "--git-dir", str(staging), "rev-parse", "--verify", "-q", f"refs/heads/{branch}"],
                      timeout=30).stdout.strip()
    if not pushed or pushed == _git(worktree, "rev-parse", "HEAD"):
        return False
    fetched = proc.run(["git", "-C", str(worktree), "fetch", "--quiet", str(staging), f"refs/heads/{branch}"],
                       timeout=300)
    if not fetched.ok:
        log.warning("could not fetch %s from the push gate of %s: %s", branch, run_dir, fetched.stderr.strip()[-300:])
        return False
    moved = proc.run(["git", "-C", str(worktree), "merge", "--quiet", "--ff-only", "FETCH_HEAD"], timeout=120)
    if not moved.ok:
        log.warning("what the agent pushed to %s is not ahead of the local branch; kept as it is", branch)
        return False
    return True
