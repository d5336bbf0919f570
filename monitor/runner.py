"""Spawning an attempt: worktree, prompt file, run spec, and a tmux session running ``agent-run``.

Also launches check jobs (local CI, local reviewers) through the same wrapper, so every process the
monitor starts is visible in tmux, survives the monitor, and leaves a ``result.json`` behind.

Run directories are 0700 and their files 0600. A ``forge_token = true`` profile gets the forge token
through a one-shot 0600 file written just before its session starts: the wrapper reads and unlinks it
at once (see :mod:`monitor.agent_run`), and :meth:`Runner.launch` removes it if the wrapper has not
taken it within ``HANDOVER_TIMEOUT``. In a container the entry does the same with a file of its own
(:mod:`monitor.runtime.secretfile`), never the container's configuration. Not argv or ``new-session -e``
(visible in ``ps``), not run.json (kept for weeks), not the tmux server's environment (every pane would
inherit it).

A full disk (ENOSPC, or a quota) while creating the worktree or writing prompt.md/run.json raises
:class:`DiskFull` naming the path: a transient condition the monitor waits out, not a failed task. Those
files are written atomically (temp file, fsync, rename), so a full disk never leaves an empty prompt.md.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shlex
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.agent_run import RESULT, SECRET_FILE, SPEC
from monitor.agents import AgentProfile, render_argv
from monitor.files import read_json
from monitor.layout import Layout, job_session_for, session_for
from monitor.private import FILE_MODE, private_dir, write_private, write_secret_once
from monitor.retry import with_footer
from monitor.runtime.base import TMUX, Runtime

if TYPE_CHECKING:
    from monitor.runtime.container import ContainerRuntime
from monitor.world import proc
from monitor.world.git import Git, GitError
from monitor.world.jobs import TEMPFAIL, is_lens_job
from monitor.world.tmux import Tmux
from registry.models import Attempt, Task

HANDOVER_TIMEOUT = 20.0  # seconds the wrapper has to take the forge token before the runner removes it
JOB_GRACE = 60.0  # a check job in a container keeps its own time limit; the wrapper's is this much later


class LaunchError(Exception):
    """The attempt could not be started; the message says why."""


DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFull(LaunchError):
    """A file could not be written because the disk (or the quota) is full: wait and try again."""

    def __init__(self, path: Path | str, detail: str) -> None:
        self.path = str(path)
        super().__init__(f"could not write {path}: {detail}")


def _write_atomic_private(path: Path, text: str) -> None:
    """``text`` at ``path`` (0600) all at once: a temp file beside it, fsync, rename. On any error the
    temp file is removed and ``path`` is as it was (never created empty or half-written)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


@dataclass(frozen=True)
class SetupSpec:
    command: str
    timeout: float


class Runner:
    def __init__(
        self,
        layout: Layout,
        tmux: Tmux,
        git: Git,
        profiles: Mapping[str, AgentProfile],
        *,
        setup: SetupSpec | None = None,
        unset_env: Sequence[str] = (),
        forge_env: Sequence[str] = (),
        python: str = sys.executable,
        runtimes: Mapping[str, Runtime] | None = None,
        default_runtime: str = TMUX,
    ) -> None:
        self.layout = layout
        self.tmux = tmux
        self.git = git
        self.profiles = profiles
        self.setup = setup
        self.unset_env = list(unset_env)
        self.forge_env = set(forge_env)  # the only secrets a `forge_token = true` profile may see
        self.python = python
        self.runtimes: dict[str, Runtime] = {**(runtimes or {}), TMUX: tmux}  # by the name an Attempt records
        self.default_runtime = default_runtime

    # -- where attempts run -------------------------------------------------------------------------------

    def runtime_name(self, task: Task) -> str:
        """Where a new attempt of ``task`` runs: its profile's ``runtime``, else ``[runtime] default``."""
        return self.profile_runtime(task.agent)

    def profile_runtime(self, agent: str) -> str:
        profile = self.profiles.get(agent)
        return (profile.runtime if profile is not None else "") or self.default_runtime

    def runtime_of(self, attempt: Attempt) -> Runtime:
        runtime = self.runtimes.get(attempt.runtime)
        if runtime is None:
            raise LaunchError(f"attempt {attempt.number} runs in {attempt.runtime!r}, which swarm.toml does not "
                              "configure any more: add [runtime.container] image back")
        return runtime

    def kill_agent(self, task: Task) -> bool:
        """Stop the agent of the task's last attempt wherever it runs (tmux session or container)."""
        attempt = task.attempt
        runtime = self.runtimes.get(attempt.runtime if attempt is not None else TMUX)
        return runtime.kill(session_for(task.id)) if runtime is not None else False

    def attach_argv(self, task: Task) -> list[str] | None:
        """An argv that puts the user's terminal in the agent's session (tmux attach, or a shell in the
        running container); None when there is nothing live to attach to."""
        attempt = task.attempt
        if attempt is None:
            return None
        if attempt.runtime == TMUX:
            return self.tmux.attach_argv(attempt.session) if self.tmux.has_session(attempt.session) else None
        runtime = self.runtimes.get(attempt.runtime)
        pane = (runtime.panes() or {}).get(attempt.session) if runtime is not None else None
        return runtime.attach_argv(attempt.session) if runtime is not None and pane is not None and not pane.dead \
            else None

    def _wrapper_argv(self, run_dir: Path) -> list[str]:
        return [self.python, "-m", "monitor.agent_run", str(run_dir)]

    def ensure_worktree(self, task: Task) -> str | None:
        """Create the task's branch and worktree (idempotent); returns the branch head. A full disk raises
        :class:`DiskFull` (git removes the half-made checkout, so the next try starts clean)."""
        worktree = Path(task.worktree)
        try:
            worktree.parent.mkdir(parents=True, exist_ok=True)
            if not worktree.exists():
                self.setup_marker(task).unlink(missing_ok=True)  # a new checkout needs its setup again
            self.git.create_worktree(worktree, task.branch, task.base_branch)
        except GitError as exc:
            if exc.disk_full:  # git's own line naming the file it could not write (the command varies)
                line = next((part for part in str(exc).split(" | ") if "No space" in part or "quota" in part),
                            str(exc))
                raise DiskFull(worktree, f"git: {line.split(': ', 1)[-1] if line.startswith('`') else line}") from exc
            raise
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                raise DiskFull(exc.filename or worktree, exc.strerror or str(exc)) from exc
            raise
        return self.git.head(task.branch)

    def setup_marker(self, task: Task) -> Path:
        return self.layout.task_dir(task.id) / "setup.ok"

    def write_attempt(self, task: Task, number: int, body: str) -> Path:
        """Write prompt.md and run.json for an attempt; returns the prompt path."""
        profile = self.profiles.get(task.agent)
        if profile is None:
            raise LaunchError(f"task {task.id}: unknown agent profile {task.agent!r}")
        run_dir = self.layout.run_dir(task.id, number)
        prompt_path = run_dir / "prompt.md"
        current = run_dir
        try:
            private_dir(self.layout.runs_dir)
            private_dir(run_dir)
            current = prompt_path
            _write_atomic_private(prompt_path, with_footer(body))
            current = run_dir / SPEC
            _write_atomic_private(current, self._spec_json(task, number, profile, prompt_path))
        except OSError as exc:
            if current.name == SPEC:  # run.json failed: no prompt without its spec
                with contextlib.suppress(OSError):
                    prompt_path.unlink()
            with contextlib.suppress(OSError):
                run_dir.rmdir()  # only if empty: an attempt's directory with nothing in it
            if exc.errno in DISK_FULL_ERRNOS:
                raise DiskFull(current, exc.strerror or str(exc)) from exc
            raise
        return prompt_path

    def _spec_json(self, task: Task, number: int, profile: AgentProfile, prompt_path: Path) -> str:
        setup = None
        if self.setup and self.setup.command.strip():
            setup = {
                "command": self.setup.command,
                "timeout": self.setup.timeout,
                "marker": str(self.setup_marker(task)),
            }
        spec = {
            "task": task.id,
            "attempt": number,
            "argv": render_argv(profile, prompt_path, Path(task.worktree)),
            "prompt_mode": profile.prompt,
            "prompt_file": str(prompt_path),
            "parser": profile.parser,
            "env": dict(profile.env),
            "unset_env": self.unset_env,
            "secret_file": SECRET_FILE if profile.forge_token else "",
            "cwd": task.worktree,
            "setup": setup,
        }
        return json.dumps(spec, indent=1)

    def launch(self, task: Task, attempt: Attempt) -> None:
        worktree = Path(task.worktree)
        if not worktree.is_dir():
            raise LaunchError(f"task {task.id}: worktree {worktree} does not exist")
        run_dir = self.layout.run_dir(task.id, attempt.number)
        if (run_dir / RESULT).exists():
            return  # this attempt already ran to the end; never run it twice
        spec = read_json(run_dir / SPEC) or {}
        if attempt.runtime != TMUX:
            self._launch_container(task, attempt, run_dir, spec)
            return
        if not spec.get("secret_file") or self.tmux.has_session(attempt.session):
            self.tmux.launch(attempt.session, self._wrapper_argv(run_dir), worktree)
            return
        handover = run_dir / str(spec["secret_file"])
        write_secret_once(handover, self._forge_values())
        try:
            self.tmux.launch(attempt.session, self._wrapper_argv(run_dir), worktree)
            deadline = time.monotonic() + HANDOVER_TIMEOUT
            while handover.exists() and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            with contextlib.suppress(FileNotFoundError):
                handover.unlink()  # the wrapper never took it: it fails its launch and the next attempt retries

    def _launch_container(self, task: Task, attempt: Attempt, run_dir: Path, spec: dict[str, object]) -> None:
        """The agent's argv under the container entry (setup once, prompt, output log, memory figures)."""
        from monitor.runtime.container import ContainerRuntime
        from monitor.runtime.entry import entry_argv

        runtime = self.runtime_of(attempt)
        if not isinstance(runtime, ContainerRuntime):
            raise LaunchError(f"runtime {attempt.runtime!r} cannot run an attempt")
        argv = spec.get("argv")
        if not isinstance(argv, list) or not argv:
            raise LaunchError(f"task {task.id}: {run_dir / SPEC} has no agent argv")
        env = {str(k): str(v) for k, v in dict(spec.get("env") or {}).items()}  # type: ignore[call-overload]
        setup = spec.get("setup")
        if isinstance(setup, dict) and setup.get("command"):
            env.update(SWARM_SETUP=str(setup["command"]), SWARM_SETUP_MARKER=str(setup["marker"]))
        mounts = [(run_dir.parent, False), *self._repository_mounts()]
        env = {**self._git_identity(), **env}
        prompt_mode = str(spec.get("prompt_mode") or "stdin")
        # a forge_token profile's token: a one-shot file the entry takes, never the container's configuration
        handover = self._forge_values() if spec.get("secret_file") else None
        runtime.launch_attempt(attempt.session, entry_argv(run_dir, prompt_mode, [str(a) for a in argv]),
                               Path(task.worktree), env, mounts=mounts, task=task.id, handover=handover)

    def _forge_values(self) -> dict[str, str]:
        return {name: os.environ[name].strip() for name in sorted(self.forge_env) if os.environ.get(name, "").strip()}

    def _repository_mounts(self) -> list[tuple[Path, bool]]:
        """The main repository's ``.git`` (a worktree needs it), its hooks and config read-only."""
        common = self.git_common_dir()
        return [(common, False)] + [(common / name, True) for name in ("hooks", "config") if (common / name).exists()]

    def _git_identity(self) -> dict[str, str]:
        """Who the agent commits as: the user's git identity, which the container's empty HOME lacks."""
        identity: dict[str, str] = {}
        for role in ("AUTHOR", "COMMITTER"):
            for part, key in (("NAME", "user.name"), ("EMAIL", "user.email")):
                name = f"GIT_{role}_{part}"
                value = os.environ.get(name, "")
                if not value:
                    found = proc.run(["git", "-C", str(self.layout.repo), "config", "--get", key], timeout=10)
                    value = found.stdout.strip() if found.ok else ""
                if value:
                    identity[name] = value
        return identity

    def git_common_dir(self) -> Path:
        """The main repository's ``.git`` (objects, refs, the worktree's admin dir): a worktree needs it."""
        dot_git = self.layout.repo / ".git"
        if dot_git.is_file():  # the repository is itself a worktree: "gitdir: <common>/worktrees/<name>"
            text = dot_git.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                admin = (self.layout.repo / text.removeprefix("gitdir:").strip()).resolve()
                return admin.parent.parent if admin.parent.name == "worktrees" else admin
        return dot_git

    def _job_runtime(self, task: Task, job: str) -> ContainerRuntime | None:
        """The container runtime a check job of ``task`` runs in: its last attempt's, unless the job is one of
        swarm's AI review lenses (they need the model key and run no agent code: they stay on the host)."""
        from monitor.runtime.container import ContainerRuntime

        attempt = task.attempt
        if attempt is None or attempt.runtime == TMUX or is_lens_job(job):
            return None
        runtime = self.runtimes.get(attempt.runtime)
        return runtime if isinstance(runtime, ContainerRuntime) else None

    def launch_job(self, task: Task, sha: str, job: str, command: str, timeout: float) -> None:
        """Start a check job at ``sha`` (idempotent per sha: a finished job is never re-run)."""
        job_dir = self.layout.job_dir(task.id, sha, job)
        if (job_dir / RESULT).exists():
            if (read_json(job_dir / RESULT) or {}).get("exit_code") != TEMPFAIL:
                return
            (job_dir / RESULT).unlink()  # the job could not judge last time (an outage): run it again
            self.tmux.kill(job_session_for(task.id, job))
        session = job_session_for(task.id, job)
        spec_path = job_dir / SPEC
        if spec_path.exists() and self.tmux.has_session(session):
            return  # already running for this sha
        self.tmux.kill(session)  # a job of an older head, or a dead pane
        private_dir(self.layout.runs_dir)
        private_dir(job_dir)
        spec: dict[str, object] = {
            "task": task.id,
            "job": job,
            "sha": sha,
            "argv": shlex.split(command),
            "prompt_mode": "none",
            "parser": "plain",
            "env": {},
            "unset_env": self.unset_env,
            "cwd": task.worktree,
            "timeout": timeout,
            "setup": None,
        }
        box = self._job_runtime(task, job)
        if box is not None:  # the agent's code is tested where the agent ran: in a container like its own
            from monitor.runtime.checkjob import settings

            spec.update(job_argv=spec["argv"], argv=[self.python, "-m", "monitor.runtime.checkjob", str(job_dir)],
                        job_timeout=timeout, timeout=timeout + JOB_GRACE, container_name=session,
                        container=settings(box, self._repository_mounts()))
        write_private(spec_path, json.dumps(spec, indent=1))
        self.tmux.launch(session, self._wrapper_argv(job_dir), Path(task.worktree))
