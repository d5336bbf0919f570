"""git in and out of a container through the engine's ``exec``: the transport of the host mode that cannot
see the worktree (``shares_worktree = false``: :mod:`monitor.runtime.remote`, docs/runtimes.md).

git's ``ext::`` transport runs a command instead of opening a connection; here the command is the engine
CLI's ``exec -i NAME git-receive-pack|git-upload-pack PATH``, so the monitor pushes the task's branch into
a repository inside the container and fetches the agent's commits back over the same Docker Engine API
it already uses. The container needs no forge credential, no network and no host path; the monitor's own
git does the talking (``protocol.ext.allow`` is set for that one command only).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from monitor.runtime.base import RuntimeFailure
from monitor.runtime.container import ContainerRuntime, _check_name
from monitor.world import proc

_PLAIN = re.compile(r"^[^\s%'\"\\]+$")  # ext:: splits on spaces and expands %; nothing here may need quoting
GIT_TIMEOUT = 300


def ext_url(runtime: ContainerRuntime, name: str, path: str = "/work") -> str:
    """The ``ext::`` remote that reaches the repository at ``path`` in container ``name``."""
    _check_name(name)
    for part in (runtime.engine, path):
        if not _PLAIN.fullmatch(part):
            raise ValueError(f"{part!r} cannot be used in a git ext:: remote (spaces, quotes or %)")
    if shutil.which("docker"):
        return f"ext::docker -H {runtime.engine} exec -i {name} %S {path}"
    return f"ext::podman --remote --url {runtime.engine} exec -i {name} %S {path}"


def _git(repo: Path, *args: str) -> proc.Result:
    return proc.run(["git", "-C", str(repo), "-c", "protocol.ext.allow=always", *args], timeout=GIT_TIMEOUT)


def push_into(runtime: ContainerRuntime, name: str, repo: Path, ref: str, branch: str, path: str = "/work") -> None:
    """Push ``ref`` of ``repo`` to ``branch`` of the repository at ``path`` in the container (it must exist:
    ``git init`` there first)."""
    done = _git(repo, "push", "--quiet", "--force", ext_url(runtime, name, path), f"{ref}:refs/heads/{branch}")
    if not done.ok:
        raise RuntimeFailure(f"could not push {ref} into container {name}: {done.stderr.strip()[-300:]}")


def fetch_from(runtime: ContainerRuntime, name: str, repo: Path, branch: str, path: str = "/work") -> str:
    """Fetch ``branch`` of the container's repository into ``refs/heads/<branch>`` of ``repo`` (forced: the
    container's branch is the truth of the attempt) and return its head."""
    done = _git(repo, "fetch", "--quiet", ext_url(runtime, name, path), f"+refs/heads/{branch}:refs/heads/{branch}")
    if not done.ok:
        raise RuntimeFailure(f"could not fetch {branch} from container {name}: {done.stderr.strip()[-300:]}")
    head = proc.run(["git", "-C", str(repo), "rev-parse", f"refs/heads/{branch}"], timeout=30)
    return head.stdout.strip()
