"""A container host that cannot see this machine's disk (``shares_worktree = false``).

Nothing of the repository is mounted. The worktree path and the attempt's run directory are empty
``tmpfs`` mounts at the same paths as here (so prompts, logs and evidence name the same paths); the
monitor pushes the task's branch into a repository created there over git's ``ext::`` transport through
the engine's ``exec`` (:mod:`monitor.runtime.gitexec`) and copies the prompt in, and only then does the
entry check the branch out and run the usual entry (setup, agent, memory figures).

Coming back: on every tick, :meth:`RemoteContainerRuntime.panes` appends the new end of the container's
``output.log`` to the local one (so output growth, ``swarm logs`` and the evidence read the same file as
everywhere else) and copies ``phase`` and ``memory``. The entry does not end with the agent: it writes
the agent's exit code to ``exit`` in the run directory and waits. Seeing that file, the monitor fetches
the container's branch into the local worktree (the container's branch is the attempt's truth), then
lets the entry end with the agent's code. The container is reported exited only after that fetch, so
every later check (commits ahead, phantom, CI) reads the local branch as with a shared host. A container
that ends before the fetch (killed, its host gone) is a death, and its unfetched commits are lost.

The agent gets no forge credential: the monitor's own git does the talking. With the host's
``push_credential`` the agent may push its branch itself, to the attempt's push gate only
(:mod:`monitor.runtime.gitgate`): ``origin`` in its repository points there, with a per-attempt token in
a credential file of its run directory; what it pushed is brought into the local branch when the
attempt ends (:mod:`monitor.runtime.pushgate`), and the forge push stays the monitor's.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tarfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.runtime import pushgate
from monitor.runtime.base import RuntimeFailure, RuntimeUnavailable
from monitor.runtime.container import ContainerPane, ContainerRuntime, _time
from monitor.runtime.entry import run_dir_of
from monitor.runtime.gitgate import GATE_DIR
from monitor.runtime.pushgate import PushSettings
from monitor.world import proc
from monitor.world.tmux import Pane

log = logging.getLogger(__name__)

MARK = "swarm-remote"
FILL_TIMEOUT = 60.0  # the container's `git init` must be done within this
EXIT_FILE, PUSHED_FILE, FETCHED_FILE = "exit", ".pushed", ".fetched"

# $1 worktree, $2 run dir, $3 branch, then the usual entry's argv.
REMOTE_ENTRY = r"""set -u
wt=$1; run=$2; branch=$3; shift 3
git init -q "$wt" || exit 125
while [ ! -e "$run/.pushed" ]; do sleep 0.1; done
cd "$wt" && git checkout -q "$branch" || { echo "could not check out $branch" >> "$run/output.log"; exit 125; }
"$@"
code=$?
echo "$code" > "$run/exit"
while [ ! -e "$run/.fetched" ]; do sleep 0.2; done
exit "$code"
"""


# Points the container's repository at the push gate: origin, the branch's upstream, the credential file.
PUSH_SETUP = r"""set -e
wt=$1; url=$2; branch=$3; store=$4
git -C "$wt" remote add origin "$url"
git -C "$wt" config "branch.$branch.remote" origin
git -C "$wt" config "branch.$branch.merge" "refs/heads/$branch"
git -C "$wt" config credential.helper "store --file=$store"
"""
CREDENTIAL_FILE = ".push-credential"


class RemoteContainerRuntime(ContainerRuntime):
    """One engine whose containers see nothing of this machine: clone in, fetch back (see the module).
    With ``push`` (the host's ``push_credential``) the agent may also push its branch itself, through
    the attempt's push gate (:mod:`monitor.runtime.pushgate`), never to the forge."""

    shares_worktree = False

    def __init__(self, *args: Any, push: PushSettings | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.push = push
        self._handing: dict[str, bytes] = {}  # a forge token's one-shot file, between create and fill

    def _storage(self, cwd: Path, mounts: Sequence[tuple[Path, bool]]) -> dict[str, Any]:
        """No bind mount at all: empty tmpfs at the worktree and run directory paths (the user's uid writes
        them; counted in the container's memory)."""
        paths = [cwd, *(path for path, _ in mounts)]
        return {"tmpfs": {str(path): "rw,exec,nosuid,nodev,mode=1777" for path in paths}}

    def launch_attempt(
        self,
        name: str,
        argv: Sequence[str],
        cwd: Path,
        env: Mapping[str, str],
        *,
        mounts: Sequence[tuple[Path, bool]],
        task: str,
        handover: Mapping[str, str] | None = None,
    ) -> None:
        """Start the attempt's container with its own empty worktree, push the task's branch and the prompt
        (and a forge token's one-shot file) in, then let the entry run (a no-op when the container was
        started and filled already)."""
        run_dir = run_dir_of(argv)
        if run_dir is None:
            raise RuntimeFailure(f"container host {self.engine} cannot see this machine's disk "
                                 "(shares_worktree = false): only agent attempts run there")
        branch = _branch(cwd)
        command = ["/bin/sh", "-c", REMOTE_ENTRY, MARK, str(cwd), str(run_dir), branch, *argv]
        # The tmpfs roots belong to root: git must trust them (the agent's and the monitor's exec git alike).
        environment = {**env, "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "safe.directory",
                       "GIT_CONFIG_VALUE_0": "*"}
        self._handing = {}
        super().launch_attempt(name, command, cwd, environment, mounts=[(run_dir, False)], task=task,
                               handover=handover)
        try:
            self._fill(name, cwd, run_dir, branch)
        except (RuntimeFailure, RuntimeUnavailable):
            self.kill(name)  # never leave a container waiting for a push that will not come
            raise
        finally:
            self._handing = {}

    def _write_handover(self, path: Path, values: Mapping[str, str]) -> None:
        """Kept in memory until :meth:`_fill` copies it into the container's own run directory."""
        from monitor.runtime.secretfile import env_lines

        self._handing[path.name] = env_lines(values)

    def _await_handover(self, path: Path) -> None:
        return None  # the entry waits for `.pushed`, which comes after the copy

    def _fill(self, name: str, cwd: Path, run_dir: Path, branch: str) -> None:
        from monitor.runtime.gitexec import push_into

        container = self._get(name)
        if container is None:
            raise RuntimeFailure(f"container {name} vanished before its branch was pushed in")
        if str((container.attrs.get("State") or {}).get("Status", "")).lower() not in ("running", "created"):
            return  # it ran and ended already: the next tick judges it, nothing runs twice
        if self._exec(container, ["test", "-e", str(run_dir / PUSHED_FILE)])[0] == 0:
            return
        deadline, last = time.monotonic() + FILL_TIMEOUT, ""
        while True:
            try:
                push_into(self, name, cwd, "HEAD", branch, str(cwd))
                break
            except RuntimeFailure as exc:  # the entry's `git init` has not run yet
                last = str(exc)
                if time.monotonic() > deadline:
                    raise RuntimeFailure(f"{last} (after {FILL_TIMEOUT:.0f} s)") from exc
                time.sleep(0.2)
        files = dict(self._handing)
        prompt = run_dir / "prompt.md"
        if prompt.exists():
            files[prompt.name] = prompt.read_bytes()
        access = pushgate.start(run_dir, cwd, branch, self.push) if self.push is not None else None
        if access is not None:
            files[CREDENTIAL_FILE] = access.credential_line().encode("utf-8")
        if files:
            self._call("copy the prompt", container.put_archive, str(run_dir), _tar(files, self.user))
        if access is not None:
            code, out = self._exec(container, ["/bin/sh", "-c", PUSH_SETUP, "swarm-push-setup", str(cwd), access.url,
                                               branch, str(run_dir / CREDENTIAL_FILE)])
            if code != 0:
                raise RuntimeFailure(f"container {name}: could not point its repository at the push gate: "
                                     f"{out[-300:]}")
        code, out = self._exec(container, ["touch", str(run_dir / PUSHED_FILE)])
        if code != 0:
            raise RuntimeFailure(f"container {name}: could not start its entry: {out[-300:]}")

    def _exec(self, container: Any, argv: list[str]) -> tuple[int, str]:
        done = self._call("exec", container.exec_run, argv, demux=False)
        return int(done.exit_code if done.exit_code is not None else -1), bytes(done.output or b"").decode(
            "utf-8", errors="replace")

    def panes(self) -> dict[str, Pane] | None:
        """The engine's view, with each running attempt's output copied back, and an attempt whose agent has
        exited reported exited (with the agent's code) once its commits are fetched into the worktree."""
        panes = super().panes()
        if panes is None:
            return None
        for name, pane in list(panes.items()):
            if pane.dead:
                continue
            try:
                synced = self._sync(name)
            except (RuntimeFailure, RuntimeUnavailable) as exc:  # this attempt only (it may be ending): next tick
                log.warning("container %s: %s", name, exc)
                continue
            if synced is not None:
                panes[name] = synced
        return panes

    def _sync(self, name: str) -> ContainerPane | None:
        import docker.errors

        try:
            container = self._get(name)
        except docker.errors.NotFound:
            return None
        if container is None:
            return None
        cmd = list(container.attrs.get("Config", {}).get("Cmd") or [])
        if len(cmd) < 7 or cmd[3] != MARK:
            return None
        cwd, run_dir, branch = Path(cmd[4]), Path(cmd[5]), cmd[6]
        if not run_dir.is_dir():
            return None
        state = container.attrs.get("State") or {}
        fetched = (run_dir / EXIT_FILE).read_text(encoding="utf-8").strip() if (run_dir / FETCHED_FILE).exists() else ""
        if fetched.lstrip("-").isdigit():  # fetched already; the container is ending
            return ContainerPane(name, True, None, int(fetched), self.owner, str(cwd),
                                 started_at=_time(str(state.get("StartedAt", ""))),
                                 finished_at=datetime.now(UTC).isoformat())
        text = self._poll(container, run_dir)
        if not text.lstrip("-").isdigit():
            return None  # the agent still runs
        for small in ("phase", "memory", "error"):
            found, body = self._exec(container, ["cat", str(run_dir / small)])
            if found == 0:
                (run_dir / small).write_text(body, encoding="utf-8")
        self._fetch(name, cwd, branch)
        (run_dir / EXIT_FILE).write_text(text + "\n", encoding="utf-8")
        (run_dir / FETCHED_FILE).touch()  # here too: a later tick or kill has nothing left to fetch
        pushgate.stop(run_dir)  # the container's branch is the truth now; the agent's token dies
        self._exec(container, ["touch", str(run_dir / FETCHED_FILE)])
        return ContainerPane(name, True, None, int(text.strip()), self.owner, str(cwd),
                             started_at=_time(str(state.get("StartedAt", ""))),
                             finished_at=datetime.now(UTC).isoformat())

    def kill(self, name: str) -> bool:
        """Fetch what the agent committed so far (fast-forward only: a stuck or timed-out agent's commits stay
        on the branch as with a shared host; nothing local is ever overwritten), then remove the container."""
        try:
            self._salvage(name)
        except (RuntimeFailure, RuntimeUnavailable) as exc:
            log.warning("container %s: its last commits were not fetched before the kill: %s", name, exc)
        with contextlib.suppress(RuntimeUnavailable):
            self._land(name)
        return super().kill(name)

    def _land(self, name: str) -> None:
        """What the agent pushed through its gate, into the local branch (fast-forward only: a container
        that ended before its last fetch keeps its pushed commits); then the gate stops."""
        container = self._get(name)
        cmd = list(container.attrs.get("Config", {}).get("Cmd") or []) if container is not None else []
        if len(cmd) < 7 or cmd[3] != MARK or not (Path(cmd[5]) / GATE_DIR).is_dir():
            return
        cwd, run_dir, branch = Path(cmd[4]), Path(cmd[5]), cmd[6]
        try:
            if pushgate.land(run_dir, cwd, branch):
                log.info("container %s: the commits its agent pushed are on %s", name, branch)
        except RuntimeFailure as exc:
            log.warning("container %s: what its agent pushed was not brought into %s: %s", name, branch, exc)
        pushgate.stop(run_dir)

    def _salvage(self, name: str) -> None:
        container = self._get(name)
        if container is None or str((container.attrs.get("State") or {}).get("Status", "")).lower() != "running":
            return
        cmd = list(container.attrs.get("Config", {}).get("Cmd") or [])
        if len(cmd) < 7 or cmd[3] != MARK or not Path(cmd[5]).is_dir():
            return
        cwd, run_dir, branch = Path(cmd[4]), Path(cmd[5]), cmd[6]
        if (run_dir / FETCHED_FILE).exists():
            return  # its last commits are in already; the container is ending
        if self._exec(container, ["test", "-e", str(run_dir / PUSHED_FILE)])[0] != 0:
            return
        self._poll(container, run_dir)
        self._fetch(name, cwd, branch, fast_forward=True)

    def _poll(self, container: Any, run_dir: Path) -> str:
        """One exec: the agent's exit code ("" while it runs), and the end of the container's output.log
        beyond the local copy's length, appended to it (the log is read after the exit, so it is whole)."""
        local = run_dir / "output.log"
        size = local.stat().st_size if local.exists() else 0
        script = 'printf "%s\\n" "$(cat "$1/exit" 2>/dev/null)"; tail -c +"$2" "$1/output.log" 2>/dev/null; exit 0'
        done = self._call("exec", container.exec_run, ["/bin/sh", "-c", script, "swarm-poll", str(run_dir),
                                                         str(size + 1)])
        code, _, tail = bytes(done.output or b"").partition(b"\n")
        if done.exit_code == 0 and tail:
            fd = os.open(local, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, tail)
            finally:
                os.close(fd)
        return code.decode("utf-8", errors="replace").strip()

    def _fetch(self, name: str, cwd: Path, branch: str, *, fast_forward: bool = False) -> None:
        """The container's branch into the local worktree (checked out there on the same branch): moved to
        the container's head (its branch is the attempt's truth), or only fast-forwarded."""
        from monitor.runtime.gitexec import _git, ext_url

        done = _git(cwd, "fetch", "--quiet", ext_url(self, name, str(cwd)), f"refs/heads/{branch}")
        if not done.ok:
            raise RuntimeFailure(f"could not fetch {branch} from container {name}: {done.stderr.strip()[-300:]}")
        move = ["merge", "--quiet", "--ff-only", "FETCH_HEAD"] if fast_forward else ["reset", "--quiet", "--hard",
                                                                                      "FETCH_HEAD"]
        moved = proc.run(["git", "-C", str(cwd), *move], timeout=120)
        if not moved.ok:
            raise RuntimeFailure(f"could not move {branch} to the container's commits: {moved.stderr.strip()[-300:]}")


def _branch(cwd: Path) -> str:
    found = proc.run(["git", "-C", str(cwd), "symbolic-ref", "--short", "HEAD"], timeout=30)
    if not found.ok or not found.stdout.strip():
        raise RuntimeFailure(f"worktree {cwd} is not on a branch: the task's branch must be checked out")
    return found.stdout.strip()


def _tar(files: Mapping[str, bytes], user: str) -> bytes:
    """``files`` (name -> content) as a tar of files owned by the container's user (mode 0600)."""
    uid, _, gid = user.partition(":")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o600
            info.uid, info.gid = int(uid or 0), int(gid or 0)
            info.mtime = int(time.time())
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()
