"""A task's check job (local CI, a local reviewer command) in a container, when its agent ran in one.

Check jobs run the code the agent wrote: with a tmux check job, a container-profile agent's test suite
would run on the host, as the user, outside every limit the agent had. So a task whose last attempt ran
in a container gets its check jobs in a container too, on the same engine, with the same image, limits,
network, user and mounts (the worktree and the repository's ``.git`` at their paths, ``hooks`` and
``config`` read-only); on a host that cannot see the worktree the job's container gets the head under
test pushed in, as the agent's got its branch. swarm's AI review lenses stay on the host: they run
swarm's own code and need the model key, which no container may hold, and they read the diff, not run it.

The job is still a tmux check job for everything else (one per head, ``result.json`` as the verdict,
killed with the task's job sessions): the wrapper in tmux runs ``python -m monitor.runtime.checkjob
JOB_DIR`` instead of the command, and this process creates the container, streams its output to the
wrapper (so ``output.log`` fills as the job runs), enforces the job's time limit, exits with the
command's exit code, and removes the container in every case (a SIGTERM from the wrapper included).
Job containers carry their own label, not the agents' one: they take no slot, and cleanup's orphan
sweep over agent containers never takes a running check for an orphan.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from monitor.runtime.base import RuntimeFailure, RuntimeUnavailable
from monitor.runtime.container import TASK_LABEL, ContainerRuntime, Limits, parse_size
from monitor.world.jobs import TEMPFAIL

CHECK_LABEL = "swarm.check"
POLL = 0.1
# The head is pushed into the job container's own repository before its command runs (remote hosts).
CLONE_ENTRY = r"""set -u
wt=$1; sha=$2; shift 2
git init -q "$wt" || exit 125
while [ ! -e "$wt/.git/swarm-pushed" ]; do sleep 0.1; done
cd "$wt" && git checkout -q --detach "$sha" || exit 125
exec "$@"
"""


def settings(runtime: ContainerRuntime, mounts: list[tuple[Path, bool]]) -> dict[str, Any]:
    """What the job process needs to run a container like the agent's (nothing secret: no environment)."""
    return {"engine": runtime.engine, "image": runtime.image, "owner": runtime.owner, "network": runtime.network,
            "memory": runtime.limits.memory, "cpus": runtime.limits.cpus, "pids": runtime.limits.pids,
            "user": runtime.user, "mounts": [[str(path), ro] for path, ro in mounts],
            "shares_worktree": getattr(runtime, "shares_worktree", True)}


def check_containers(runtime: ContainerRuntime) -> dict[str, bool]:
    """This repository's check-job containers on the runtime's engine: name -> still running. A job whose
    process was hard-killed (its wrapper's backup limit, a host crash) can leave one behind."""
    found = runtime._call("list", runtime.client().containers.list, all=True,
                          filters={"label": f"{CHECK_LABEL}={runtime.owner}"})
    return {str(c.name).lstrip("/"): str((c.attrs.get("State") or {}).get("Status", "")
                                          if isinstance(c.attrs.get("State"), dict) else c.attrs.get("State", ""))
            .lower() == "running" for c in found}


def remove_check_container(runtime: ContainerRuntime, name: str) -> None:
    """Remove one check container of this repository (never another repository's, never an agent's)."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound):
        container = runtime._call("inspect", runtime.client().containers.get, name)
        if (container.attrs.get("Config", {}).get("Labels") or {}).get(CHECK_LABEL) == runtime.owner:
            runtime._call("remove", container.remove, force=True)


class CheckContainer:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        box = spec["container"]
        self.box = box
        self.runtime = ContainerRuntime(box["engine"], image=box["image"], owner=box["owner"],
                                        network=box["network"], user=box["user"],
                                        limits=Limits(box["memory"], float(box["cpus"]), int(box["pids"])))
        self.name = str(spec["container_name"])
        self.stopping = ""
        self.lock = threading.Lock()
        self.shown = 0
        self.closed = False

    def _remove(self) -> None:
        import docker.errors

        with contextlib.suppress(docker.errors.NotFound, RuntimeFailure, RuntimeUnavailable):
            container = self.runtime._call("inspect", self.runtime.client().containers.get, self.name)
            if (container.attrs.get("Config", {}).get("Labels") or {}).get(CHECK_LABEL) == self.runtime.owner:
                self.runtime._call("remove", container.remove, force=True)

    def _create(self) -> Any:
        from docker.types import Mount

        cwd, argv = str(self.spec["cwd"]), [str(a) for a in self.spec["job_argv"]]
        environment = {"HOME": "/tmp"}  # noqa: S108 - the container's own /tmp
        if self.box["shares_worktree"]:
            storage: dict[str, Any] = {"mounts": [Mount(target=cwd, source=cwd, type="bind")] + [
                Mount(target=path, source=path, type="bind", read_only=bool(ro)) for path, ro in self.box["mounts"]]}
            command = argv
        else:
            storage = {"tmpfs": {cwd: "rw,exec,nosuid,nodev,mode=1777"}}
            command = ["/bin/sh", "-c", CLONE_ENTRY, "swarm-check", cwd, str(self.spec["sha"]), *argv]
            environment.update(GIT_CONFIG_COUNT="1", GIT_CONFIG_KEY_0="safe.directory", GIT_CONFIG_VALUE_0="*")
        client = self.runtime.client()
        memory = parse_size(self.runtime.limits.memory)
        return self.runtime._call(
            "create", client.containers.create, self.runtime.image, command, name=self.name, detach=True,
            labels={CHECK_LABEL: self.runtime.owner, TASK_LABEL: str(self.spec["task"])}, user=self.runtime.user,
            working_dir=cwd, environment=environment, network_mode=self.runtime.network, mem_limit=memory,
            memswap_limit=memory, nano_cpus=int(self.runtime.limits.cpus * 1e9), pids_limit=self.runtime.limits.pids,
            cap_drop=["ALL"], security_opt=["no-new-privileges"], **storage)

    def _fill(self, container: Any) -> None:
        """Push the head under test into the container's repository, then let its entry go on."""
        from monitor.runtime.gitexec import push_into

        cwd, deadline = Path(str(self.spec["cwd"])), time.monotonic() + 60
        while True:
            try:
                push_into(self.runtime, self.name, cwd, str(self.spec["sha"]), "swarm-check", str(cwd))
                break
            except RuntimeFailure:
                if time.monotonic() > deadline or self.stopping:
                    raise
                time.sleep(0.1)
        self.runtime._call("exec", container.exec_run, ["touch", f"{cwd}/.git/swarm-pushed"])

    def _stream(self, container: Any) -> None:
        with contextlib.suppress(Exception):  # the container went away: the final read below has the rest
            for chunk in container.logs(stream=True, follow=True):
                with self.lock:
                    if self.closed:
                        return
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.buffer.flush()
                    self.shown += len(chunk)

    def _rest(self, container: Any) -> None:
        """What the stream has not shown yet (it can lag the container's end, or not end at all)."""
        with contextlib.suppress(Exception):
            whole = bytes(self.runtime._call("logs", container.logs))
            with self.lock:
                self.closed = True
                sys.stdout.buffer.write(whole[self.shown:])
                sys.stdout.buffer.flush()

    def run(self) -> int:
        timeout = float(self.spec.get("job_timeout") or 0)
        import docker.errors

        self._remove()  # a job container left behind by a killed run of this job
        try:
            container = self._create()
        except (RuntimeFailure, docker.errors.NotFound) as exc:
            print(f"swarm: the check's container could not be created: {exc}", flush=True)
            return 125
        try:
            self.runtime._call("start", container.start)
            if not self.box["shares_worktree"]:
                self._fill(container)
            threading.Thread(target=self._stream, args=(container,), daemon=True).start()
            started = time.monotonic()
            while not self.stopping:
                self.runtime._call("inspect", container.reload)
                state = container.attrs.get("State") or {}
                if str(state.get("Status", "")).lower() in ("exited", "stopped", "dead"):
                    self._rest(container)
                    return int(state.get("ExitCode", 1))
                if timeout and time.monotonic() - started > timeout:
                    self._rest(container)
                    print(f"swarm: timed out after {timeout:g}s", flush=True)
                    return 124
                time.sleep(POLL)
            return 143
        except (RuntimeFailure, RuntimeUnavailable) as exc:
            print(f"swarm: the check's container failed: {exc}", flush=True)
            return TEMPFAIL if isinstance(exc, RuntimeUnavailable) else 125  # an engine outage: no verdict
        finally:
            self._remove()

    def stop(self, signum: int, _frame: object) -> None:
        self.stopping = signal.Signals(signum).name


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m monitor.runtime.checkjob JOB_DIR", file=sys.stderr)
        return 2
    spec = json.loads((Path(args[0]) / "run.json").read_text(encoding="utf-8"))
    job = CheckContainer(spec)
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(signum, job.stop)
    return job.run()


if __name__ == "__main__":
    sys.exit(main())
