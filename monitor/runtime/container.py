"""Agents in containers through the Docker Engine API (Docker or Podman; the ``docker`` SDK, imported lazily).

Each attempt runs in its own container, named like its tmux session and labelled with the repository and
the task, so one engine can serve several repositories. The container gets the worktree and the main
repository's ``.git`` bind-mounted at their host paths (``.git/hooks`` and ``.git/config`` read-only: a
hook or an alias planted there would run on the host), the task's run directory (prompt, output log), the
user's uid:gid with ``HOME=/tmp``, the limits of ``[runtime.container]``, no capabilities, and the
profile's environment only: the container's environment is built from scratch, so none of swarm's
secrets can reach it.

The agent's argv runs under a small POSIX ``sh`` entry (:mod:`monitor.runtime.entry`: setup once per
worktree, the prompt, ``output.log``, the memory figures; and what the container's end means).
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitor.runtime.base import RuntimeFailure, RuntimeUnavailable
from monitor.runtime.entry import (
    ENTRY,
    ERROR_FILE,
    MEMORY_FILE,
    PHASE_FILE,
    SECRET_ENV_FILE,
    ContainerPane,
    entry_argv,
    exit_record,
    memory_facts,
    oom_evidence,
    run_dir_of,
)
from monitor.world.tmux import Pane

# the entry's parts, imported from here by older callers
__all__ = ["ENTRY", "ERROR_FILE", "MEMORY_FILE", "PHASE_FILE", "SECRET_ENV_FILE", "ContainerPane", "ContainerRuntime",
           "Limits", "entry_argv", "exit_record", "memory_facts", "oom_evidence", "parse_size", "run_dir_of"]

log = logging.getLogger(__name__)

API_VERSION = "1.41"  # Docker 20.10+, Podman 4's compat API: no version probe on connect
REPO_LABEL = "swarm.repo"
TASK_LABEL = "swarm.task"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.I)
_RUNNING = ("running", "paused", "restarting", "created", "configured")
# waits between tries to remove a container the engine says is busy exiting; None = give up
KILL_RETRY_DELAYS: tuple[float | None, ...] = (0.2, 0.5, 1.0, None)

def parse_size(text: str) -> int:
    """"4g", "512m", "1.5G", "1048576" -> bytes (binary units, as Docker reads them)."""
    found = _SIZE.fullmatch(text)
    if not found:
        raise ValueError(f"invalid memory size {text!r}: write a number with k, m or g, e.g. \"4g\"")
    number, unit = float(found.group(1)), found.group(2).lower()
    return int(number * 1024 ** " kmgt".index(unit or " "))


@dataclass(frozen=True)
class Limits:
    memory: str = "4g"
    cpus: float = 2.0
    pids: int = 1024


def _default_engine() -> str:
    """DOCKER_HOST, else the local Docker socket, else the local Podman one (rootful, then rootless)."""
    if os.environ.get("DOCKER_HOST"):
        return os.environ["DOCKER_HOST"]
    candidates = [Path("/var/run/docker.sock"), Path("/run/podman/podman.sock")]
    if os.environ.get("XDG_RUNTIME_DIR"):
        candidates.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "podman" / "podman.sock")
    for path in candidates:
        if path.exists():
            return f"unix://{path}"
    return "unix:///var/run/docker.sock"


def _time(text: str) -> str:
    """An engine timestamp (nanoseconds, sometimes a zero date) as an ISO time Python reads; "" if none."""
    if not text or text.startswith("0001-"):
        return ""
    found = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text)
    if not found:
        return ""
    fraction = (found.group(2) or "")[:7]
    zone = found.group(3) or "Z"
    return f"{found.group(1)}{fraction}{'+00:00' if zone == 'Z' else zone}"


class ContainerRuntime:
    """One engine (one host). ``engine`` is its Docker Engine API URL ("" = DOCKER_HOST or the local
    socket); ``owner`` (the repository path) labels the containers this object starts, and it sees and
    kills only those."""

    def __init__(
        self,
        engine: str = "",
        *,
        image: str,
        owner: str,
        network: str = "none",
        limits: Limits | None = None,
        user: str | None = None,
        timeout: int = 30,
    ) -> None:
        if not image.strip():
            raise ValueError("[runtime.container] image is empty: name the image with the agent's CLI and git")
        self.engine = engine or _default_engine()
        self.image = image
        self.owner = owner
        self.network = network or "none"
        self.limits = limits or Limits()
        parse_size(self.limits.memory)
        self.user = user or f"{os.getuid()}:{os.getgid()}"
        self.timeout = timeout
        self._client: Any = None

    # -- plumbing --------------------------------------------------------------------------------

    def client(self) -> Any:
        if self._client is None:
            try:
                import docker  # lazily: only users of containers pay for it
            except ImportError as exc:
                raise RuntimeUnavailable("the docker package is missing: pip install docker") from exc
            try:
                self._client = docker.DockerClient(base_url=self.engine, version=API_VERSION,
                                                   timeout=int(self.timeout))
            except Exception as exc:  # docker wraps every way a URL can be wrong
                raise RuntimeUnavailable(f"container engine {self.engine}: {exc}") from exc
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one engine call, turning the SDK's and requests' errors into the runtime's."""
        import docker.errors
        import requests

        try:
            return fn(*args, **kwargs)
        except docker.errors.NotFound:
            raise
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise RuntimeUnavailable(f"container engine {self.engine} unreachable ({what}): {exc}") from exc
        except docker.errors.APIError as exc:
            if exc.status_code is not None and exc.status_code >= 500 and "no such" not in str(exc).lower():
                raise RuntimeUnavailable(f"container engine {self.engine} failed ({what}): {exc}") from exc
            raise RuntimeFailure(f"container engine {self.engine} refused {what}: {exc.explanation or exc}") from exc
        except docker.errors.DockerException as exc:
            raise RuntimeUnavailable(f"container engine {self.engine} ({what}): {exc}") from exc

    def _mine(self) -> list[Any]:
        client = self.client()
        return list(self._call("list containers", client.containers.list, all=True,
                               filters={"label": f"{REPO_LABEL}={self.owner}"}))

    def _get(self, name: str) -> Any | None:
        import docker.errors

        _check_name(name)
        try:
            container = self._call("inspect", self.client().containers.get, name)
        except docker.errors.NotFound:
            return None
        labels = container.attrs.get("Config", {}).get("Labels") or {}
        return container if labels.get(REPO_LABEL) == self.owner else None

    # -- queries ---------------------------------------------------------------------------------

    def panes(self) -> dict[str, Pane] | None:
        """Every container of this repository, in one list call (plus one inspect per exited one, for its
        exit code and OOM flag). Raises :class:`RuntimeUnavailable` when the engine cannot be asked."""
        import docker.errors

        panes: dict[str, Pane] = {}
        for container in self._mine():
            name = str(container.name).lstrip("/")
            state = str(container.attrs.get("State") if isinstance(container.attrs.get("State"), str)
                        else (container.attrs.get("State") or {}).get("Status", "")).lower()
            if state in _RUNNING:
                panes[name] = ContainerPane(name, False, None, None, self.owner, "")
                continue
            try:
                self._call("inspect", container.reload)
            except docker.errors.NotFound:
                continue  # removed since the list
            info = container.attrs.get("State") or {}
            panes[name] = ContainerPane(
                name, True, None, int(info.get("ExitCode", -1)), self.owner,
                str(container.attrs.get("Config", {}).get("WorkingDir", "")),
                oom_killed=bool(info.get("OOMKilled")), started_at=_time(str(info.get("StartedAt", ""))),
                finished_at=_time(str(info.get("FinishedAt", ""))),
            )
        return panes

    def capture(self, name: str, lines: int = 200) -> str:
        """The end of the engine's log of the container ("" if none; the agent's output is in output.log)."""
        container = self._get(name)
        if container is None:
            return ""
        raw = self._call("logs", container.logs, tail=max(lines, 0))
        return bytes(raw).decode("utf-8", errors="replace")

    def attach_argv(self, name: str) -> list[str]:
        """A shell inside the running container, through the docker CLI (or podman's)."""
        _check_name(name)
        if shutil.which("docker"):
            return ["docker", "-H", self.engine, "exec", "-it", name, "/bin/sh"]
        return ["podman", "--url", self.engine, "exec", "-it", name, "/bin/sh"]

    # -- actions ---------------------------------------------------------------------------------

    def launch(self, name: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> None:
        """Run ``argv`` in a new container ``name`` with ``cwd`` bind-mounted (no run directory)."""
        self.launch_attempt(name, argv, cwd, env or {}, mounts=(), task="")

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
        """Create and start container ``name`` running ``argv`` in ``cwd``; a no-op when it exists (running
        or exited: an exited one is judged by the next tick, never run twice). ``mounts`` are extra host
        paths as (path, read_only), mounted at the same path; ``cwd`` is mounted read-write. ``handover``
        (a forge token) reaches the entry through a one-shot file (:mod:`monitor.runtime.secretfile`),
        never the container's configuration."""
        import docker.errors

        _check_name(name)
        argv = list(argv)
        if not argv or not all(isinstance(arg, str) for arg in argv):
            raise ValueError("argv must be a non-empty list of strings")
        for key in env:
            if not _ENV_NAME.fullmatch(key):
                raise ValueError(f"invalid environment variable name {key!r}")
        client = self.client()
        try:
            existing = self._call("inspect", client.containers.get, name)
        except docker.errors.NotFound:
            existing = None
        if existing is not None:
            labels = existing.attrs.get("Config", {}).get("Labels") or {}
            if labels.get(REPO_LABEL) != self.owner:
                other = labels.get(REPO_LABEL) or "someone else"
                raise RuntimeFailure(f"container {name} on {self.engine} belongs to {other}: remove it or use another "
                                     "engine")
            if str((existing.attrs.get("State") or {}).get("Status", "")).lower() == "created":
                self._call("start", existing.start)
            return
        environment = {**env, "HOME": "/tmp"}  # noqa: S108 - the container's own /tmp
        secret = None
        if handover:
            run_dir = run_dir_of(argv)
            if run_dir is None:
                raise ValueError("a secret is handed over only to an attempt's entry")
            secret = run_dir / SECRET_ENV_FILE
            environment["SWARM_SECRET_FILE"] = str(secret)
            self._write_handover(secret, handover)
        try:
            container = self._call(
                "create", client.containers.create, self.image, argv, name=name, detach=True,
                labels={REPO_LABEL: self.owner, TASK_LABEL: task}, user=self.user, working_dir=str(cwd),
                environment=environment, network_mode=self.network, **self._storage(cwd, mounts),
                mem_limit=parse_size(self.limits.memory), memswap_limit=parse_size(self.limits.memory),
                nano_cpus=int(self.limits.cpus * 1e9), pids_limit=self.limits.pids,
                cap_drop=["ALL"], security_opt=["no-new-privileges"],
            )
        except docker.errors.ImageNotFound as exc:
            raise RuntimeFailure(f"image {self.image} is not on the container engine {self.engine}: pull or build "
                                 "it there ([runtime.container] image)") from exc
        except docker.errors.NotFound as exc:
            raise RuntimeFailure(f"container engine {self.engine} could not create {name}: {exc}") from exc
        try:
            self._call("start", container.start)
        except (RuntimeFailure, docker.errors.NotFound) as exc:
            self.kill(name)  # never leave a created container that a later launch would take as started
            raise RuntimeFailure(f"container {name} did not start: {exc}") from exc
        finally:
            if secret is not None:
                self._await_handover(secret)

    def _write_handover(self, path: Path, values: Mapping[str, str]) -> None:
        """The one-shot secret file where the entry will look (here: the bind-mounted run directory)."""
        from monitor.runtime.secretfile import write_env_once

        write_env_once(path, values)

    def _await_handover(self, path: Path) -> None:
        """Wait for the entry to take the file, and remove it if it has not (see :mod:`.secretfile`)."""
        from monitor.runtime.secretfile import wait_taken

        if not wait_taken(path):
            log.warning("the container's entry did not take its one-shot secret file %s in time; removed", path)

    def _storage(self, cwd: Path, mounts: Sequence[tuple[Path, bool]]) -> dict[str, Any]:
        """The container's filesystem beyond the image: ``cwd`` and ``mounts`` bind-mounted at their paths."""
        from docker.types import Mount

        binds = [Mount(target=str(cwd), source=str(cwd), type="bind", read_only=False)]
        binds += [Mount(target=str(path), source=str(path), type="bind", read_only=ro) for path, ro in mounts]
        return {"mounts": binds}

    def kill(self, name: str) -> bool:
        """Remove this repository's container ``name`` at once (SIGKILL); False if there was none."""
        import docker.errors

        container = self._get(name)
        if container is None:
            return False
        for delay in KILL_RETRY_DELAYS:
            try:
                self._call("remove", container.remove, force=True)
            except docker.errors.NotFound:
                return False
            except RuntimeUnavailable as exc:
                # podman answers 500 "container state improper" while the container is exiting on its own:
                # a moment later it removes it; anything else, or the last try, is an unreachable engine
                if "state improper" not in str(exc).lower() or delay is None:
                    raise
                time.sleep(delay)
                continue
            return True
        return True


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"invalid container name {name!r}: must match {_NAME.pattern}")
    return name
