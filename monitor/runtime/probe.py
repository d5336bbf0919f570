"""What `swarm doctor` asks a container engine before any agent runs there: is it reachable (and which
engine and API version), is the image on it, and can a container write a commit in a worktree of this
repository with the mounts and the user an attempt gets. Each answer is one line, with the fix when it
is wrong.

On a host with ``push_credential`` a container there must reach this machine's push gate: a probe
container asks a throwaway gate for its refs and must be asked for credentials (:func:`gate_check`).

The commit probe makes a throwaway worktree (detached, so no branch is left behind), runs one container
in it as an attempt would run (the worktree and the repository's ``.git`` at their host paths, ``hooks``
and ``config`` read-only, the user's uid, the limits, the user's git identity, no other environment), has
it commit, checks on the host that the commit is there, and removes the container and the worktree.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from monitor.runtime.base import RuntimeFailure, RuntimeUnavailable
from monitor.runtime.container import ContainerPane, ContainerRuntime
from monitor.world import proc

Check = tuple[bool, str]
PROBE_TIMEOUT = 120.0
MISSING = "swarm-doctor-missing:"


def engine_check(runtime: ContainerRuntime, label: str = "container engine") -> Check:
    """Reachable, and which engine and API version answer."""
    try:
        client = runtime.client()
        info = runtime._call("version", client.version)
    except (RuntimeUnavailable, RuntimeFailure) as exc:
        return False, (f"{label}: {runtime.engine} cannot be reached ({_short(exc)}) — start Docker or `podman "
                       "system service`, or set [runtime.container] engine (or DOCKER_HOST) to its API URL")
    components = info.get("Components") or [{}]
    name = str(components[0].get("Name") or "Docker Engine")
    return True, (f"{label}: {runtime.engine} answers: {name} {info.get('Version', '?')} "
                  f"(API {info.get('ApiVersion', '?')})")


def image_check(runtime: ContainerRuntime) -> Check:
    """The image is on the engine (attempts never pull: a missing image fails every launch)."""
    import docker.errors

    try:
        image = runtime._call("inspect image", runtime.client().images.get, runtime.image)
    except docker.errors.NotFound:
        return False, (f"image {runtime.image}: not on {runtime.engine} — pull or build it there (`docker -H "
                       f"{runtime.engine} pull {runtime.image}`), or fix [runtime.container] image")
    except (RuntimeUnavailable, RuntimeFailure) as exc:
        return False, f"image {runtime.image}: cannot be inspected on {runtime.engine} ({_short(exc)})"
    size = int(image.attrs.get("Size") or 0)
    return True, f"image {runtime.image}: present on {runtime.engine} ({str(image.id)[7:19]}, {size // 2**20} MiB)"


def commit_check(
    runtime: ContainerRuntime,
    repo: Path,
    worktree_root: Path,
    mounts: Sequence[tuple[Path, bool]],
    env: Mapping[str, str],
    commands: Sequence[str] = (),
) -> Check:
    """A container commits in a throwaway worktree; ``commands`` (the routed agents' programs) must be on
    the image's PATH. ``mounts`` and ``env`` are what an attempt gets besides its worktree."""
    from monitor.runtime.remote import RemoteContainerRuntime

    if isinstance(runtime, RemoteContainerRuntime):
        return True, ("container commit: not tried on a host that cannot see the worktree (shares_worktree = false): "
                      "its agents commit in their own repository and the monitor fetches the commits back")
    head = proc.run(["git", "-C", str(repo), "rev-parse", "--verify", "-q", "HEAD"], timeout=30)
    if not head.ok:
        return False, "container commit: the repository has no commit yet — commit once, then run doctor again"
    tag = secrets.token_hex(4)
    worktree = worktree_root / f".swarm-doctor-{tag}"
    name = f"swarm-doctor-{tag}"
    worktree_root.mkdir(parents=True, exist_ok=True)
    added = proc.run(["git", "-C", str(repo), "worktree", "add", "-q", "--detach", str(worktree), "HEAD"],
                     timeout=120)
    if not added.ok:
        return False, f"container commit: could not make a worktree at {worktree}: {added.stderr.strip()[-200:]}"
    try:
        return _commit_in(runtime, name, worktree, head.stdout.strip(), mounts, env, commands)
    finally:
        with contextlib.suppress(RuntimeUnavailable, RuntimeFailure):
            runtime.kill(name)
        proc.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(worktree)], timeout=120)
        proc.run(["git", "-C", str(repo), "worktree", "prune"], timeout=60)


def _commit_in(
    runtime: ContainerRuntime,
    name: str,
    worktree: Path,
    before: str,
    mounts: Sequence[tuple[Path, bool]],
    env: Mapping[str, str],
    commands: Sequence[str],
) -> Check:
    checks = "".join(f'command -v "{c}" >/dev/null 2>&1 || echo "{MISSING} {c}"; ' for c in commands if _plain(c))
    script = (f"{checks}git commit -q --allow-empty --no-verify -m 'swarm doctor: a container can commit here' "
              "&& git rev-parse HEAD")
    try:
        runtime.launch_attempt(name, ["/bin/sh", "-c", script], worktree, env, mounts=mounts, task="doctor")
    except (RuntimeUnavailable, RuntimeFailure) as exc:
        return False, f"container commit: the container did not start ({_short(exc)})"
    pane = _ended(runtime, name)
    if pane is None:
        return False, f"container commit: the container did not finish in {PROBE_TIMEOUT:.0f} s"
    output = runtime.capture(name, 50)
    missing = [line.split(MISSING, 1)[1].strip() for line in output.splitlines() if MISSING in line]
    after = proc.run(["git", "-C", str(worktree), "rev-parse", "HEAD"], timeout=30).stdout.strip()
    if pane.dead_status != 0 or after == before or after not in output:
        tail = " | ".join(line for line in output.splitlines()[-3:] if MISSING not in line)
        fix = ("set your git identity (git config --global user.name/user.email): agents commit as you"
               if "identity" in output.lower() else
               "the image needs git and /bin/sh, and the repository must belong to the user swarm runs as")
        return False, (f"container commit: a container could not commit in a worktree (exit {pane.dead_status}: "
                       f"{tail[-300:] or 'no output'}) — {fix}")
    if missing:
        return False, (f"container commit: works, but {', '.join(missing)} is not on the image's PATH — add the "
                       "agent's CLI to the image ([runtime.container] image)")
    return True, f"container commit: a container wrote a commit in a throwaway worktree as uid:gid {runtime.user}"


def gate_check(runtime: ContainerRuntime) -> Check:
    """On a host with ``push_credential``: a container there reaches a push gate on this machine at the
    address it is told (``push_host``) and is asked for credentials (an HTTP answer: the route works)."""
    import tempfile

    from monitor.runtime.gitgate import Gate, serve
    from monitor.runtime.remote import RemoteContainerRuntime

    push = runtime.push if isinstance(runtime, RemoteContainerRuntime) else None
    if push is None:
        return True, "push gate: not used on this host (push_credential is off)"
    tag = secrets.token_hex(4)
    name = f"swarm-doctor-{tag}"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            server = serve(Gate(Path(tmp), "swarm-doctor", secrets.token_urlsafe(24), "/doctor.git"), push.listen)
        except OSError as exc:
            return False, (f"push gate: cannot listen on {push.listen} ({_short(exc)}) — set push_listen to an "
                           "address of this machine")
        url = f"http://{push.host or push.listen}:{server.server_address[1]}/doctor.git"
        try:
            ContainerRuntime.launch_attempt(runtime, name, ["/bin/sh", "-c", 'git ls-remote "$1" 2>&1 | tail -n 3',
                                                            "swarm-probe", url], Path("/tmp/swarm-doctor"),  # noqa: S108
                                            {"GIT_TERMINAL_PROMPT": "0"}, mounts=(), task="doctor")
            pane = _ended(runtime, name)
            output = runtime.capture(name, 20) if pane is not None else ""
        except (RuntimeUnavailable, RuntimeFailure) as exc:
            return False, f"push gate: the probe container did not start ({_short(exc)})"
        finally:
            server.shutdown()
            with contextlib.suppress(RuntimeUnavailable, RuntimeFailure):
                runtime.kill(name)
    if "Username" in output or "Authentication failed" in output:
        return True, f"push gate: a container on {runtime.engine} reaches this machine at {url.rsplit('/', 1)[0]}"
    tail = " | ".join(output.strip().splitlines()[-2:]) or "no answer"
    return False, (f"push gate: a container on {runtime.engine} cannot reach {url.rsplit('/', 1)[0]} "
                   f"({tail[-200:]}) — set push_host to this machine's address as that host sees it, push_listen "
                   "to an address it can reach, and a [runtime.container] network that routes there")


def _ended(runtime: ContainerRuntime, name: str) -> ContainerPane | None:
    deadline = time.monotonic() + PROBE_TIMEOUT
    while time.monotonic() < deadline:
        pane = (runtime.panes() or {}).get(name)
        if isinstance(pane, ContainerPane) and pane.dead:
            return pane
        time.sleep(0.1)
    return None


def _plain(command: str) -> bool:
    return bool(command) and all(c.isalnum() or c in "._+-/" for c in command)


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 200 else text[:197] + "..."
