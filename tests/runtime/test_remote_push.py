"""The opt-in push credential on a host that cannot see the worktree, through real ticks on a real podman:
the agent pushes its branch through the attempt's push gate (and only its branch), what it pushed lands in
the repository even when its container is killed before the monitor's fetch, and the token shows in no
configuration, argv, log or prompt and dies with the attempt."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.layout import session_for
from monitor.runtime.gitgate import GATE_DIR, STAGING
from monitor.runtime.pushgate import PushSettings
from monitor.runtime.remote import CREDENTIAL_FILE, RemoteContainerRuntime
from monitor.tick import World
from orchestrator import tasks as task_ops
from orchestrator.config import ConfigError, parse
from registry.models import FailureKind, Status, Task
from tests.conftest import git
from tests.fakes.podman import Podman
from tests.runtime.test_container_lifecycle import tick_until
from tests.runtime.test_placement import hosts_config
from tests.runtime.test_push_gate import BRANCH
from tests.worlds import make_world

# Tries what it must not (another branch, a tag, a delete), then pushes its branch; waits when told to.
PUSHER = r"""
prompt=$(cat)
b=$(git symbolic-ref --short HEAD)
n=$(printf '%s' "$prompt" | sed -n 's/^## Attempt \([0-9]*\) of.*/\1/p' | head -n 1); n=${n:-1}
echo "work $n" > "work-$n.txt"; git add "work-$n.txt"; git commit -qm "pushed work $n"
git tag "v$n"
for try in "other HEAD:refs/heads/other" "tag v$n" "delete :$b"; do
  set -- $try
  if git push origin "$2" >"/tmp/$1.out" 2>&1; then echo "$1: accepted"; else echo "$1: refused"; fi
  sed "s/^/$1| /" "/tmp/$1.out"
done
if git push >/tmp/push.out 2>&1; then echo "push: accepted"; else echo "push: refused"; fi
sed "s/^/push| /" /tmp/push.out
echo pushed
case "$prompt" in *"wait: $n"*) sleep 600 ;; esac
"""

CONFIG = f"""
[agents.pusher]
command = ["sh", "-c", '''{PUSHER}''']
prompt = "stdin"
runtime = "container"
"""


def push_config(engine: Podman) -> str:
    # host networking: the container reaches the gate on this machine's loopback, and nothing of the host's
    # firewall changes (no bridge)
    text = hosts_config(engine.image, [("far", engine.url, 2)]).replace('network = "none"', 'network = "host"')
    return text + "shares_worktree = false\npush_credential = true\n" + CONFIG


@pytest.fixture
def pushing(git_repo: Path, tmux_socket: str, podman: Podman) -> Iterator[World]:
    world, _, _ = make_world(git_repo, tmux_socket, extra=push_config(podman))
    yield world
    runtime = world.runner.runtimes["container:far"]
    for name in runtime.panes() or {}:
        runtime.kill(name)


def spawn(world: World, prompt: str) -> Task:
    return task_ops.spawn(world, title="Pusher", prompt=prompt, agent="pusher", kind="default", after=[],
                          base_branch="main")


def everything_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.rglob("*") if p.is_file() and STAGING not in p.parts)


def host_argv() -> bytes:
    seen = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            seen.append(cmdline.read_bytes())
        except OSError:
            continue
    return b"\n".join(seen)


def test_the_setting_loads_only_for_a_host_that_cannot_see_the_worktree() -> None:
    host = {"name": "far", "engine": "ssh://b", "slots": 1, "shares_worktree": False, "push_credential": True,
            "push_host": "10.0.2.2", "push_force": True}
    settings = parse({"runtime": {"container": {"image": "x", "hosts": [host]}}}, Path("swarm.toml"))
    loaded = settings.runtime.container.hosts[0]
    assert (loaded.push_credential, loaded.push_listen, loaded.push_host, loaded.push_force) == (
        True, "127.0.0.1", "10.0.2.2", True)
    with pytest.raises(ConfigError, match="push_credential needs shares_worktree = false"):
        parse({"runtime": {"container": {"image": "x", "hosts": [{**host, "shares_worktree": True}]}}},
              Path("swarm.toml"))
    with pytest.raises(ConfigError, match="is not a host name"):
        parse({"runtime": {"container": {"image": "x", "hosts": [{**host, "push_host": "a b"}]}}}, Path("swarm.toml"))


def test_an_agent_pushes_only_its_branch_and_what_it_pushed_survives_its_container(
    pushing: World, podman: Podman
) -> None:
    world = pushing
    runtime = world.runner.runtimes["container:far"]
    assert isinstance(runtime, RemoteContainerRuntime) and runtime.push == PushSettings()
    task = spawn(world, "wait: 1")
    branch = f"swarm/{task.id}"
    run_dir = world.layout.run_dir(task.id, 1)
    log = run_dir / "output.log"
    tick_until(world, lambda s: log.exists() and "pushed" in log.read_text())
    text = log.read_text()
    assert "other: refused" in text and "refs/heads/other refused" in text, text
    assert "tag: refused" in text and "refs/tags/v1 refused" in text, text
    assert "delete: refused" in text and "deleting" in text, text
    assert "push: accepted" in text, text
    staged = git(run_dir / GATE_DIR / STAGING, "log", "--format=%s", "-1", branch)
    assert staged == "pushed work 1", "the push landed in the attempt's staging repository"
    assert git(world.layout.repo, "log", "--format=%s", "-1", branch) != "pushed work 1", "not fetched yet"

    name = session_for(task.id)
    line = podman.cli("exec", name, "cat", str(run_dir / CREDENTIAL_FILE)).strip()
    token = line.split(":", 2)[2].split("@", 1)[0]
    assert len(token) >= 40
    assert token not in podman.cli("inspect", name), "the token is in the container's configuration"
    assert token not in podman.cli("exec", name, "cat", "/proc/1/environ")
    assert token.encode() not in host_argv(), "the token is in some argv on the host"
    assert token.encode() not in everything_under(world.layout.state_dir), "the token is in a file of .swarm"
    assert b"git-receive-pack" in (run_dir / GATE_DIR / "gate.log").read_bytes()

    url = podman.cli("exec", name, "git", "-C", task.worktree, "config", "remote.origin.url").strip()
    assert url.startswith("http://127.0.0.1:") and token not in url

    podman.cli("kill", name)  # before the monitor's fetch: only the gate has the commit
    state = tick_until(world, lambda s: len(s.tasks[task.id].attempts) == 2)
    first = state.tasks[task.id].attempts[0]
    assert first.failure is not None and first.failure.kind is FailureKind.died, first
    assert "pushed work 1" in git(world.layout.repo, "log", "--format=%s", branch), \
        "what the agent pushed was lost with its container"
    assert not (run_dir / GATE_DIR / STAGING).exists(), "the first attempt's gate is gone"
    store = world.layout.repo.parent / "old-credential"  # outside .swarm, which is searched below
    store.write_text(line + "\n")
    late = subprocess.run(["git", "-C", str(world.layout.repo), "-c", f"credential.helper=store --file={store}",
                           "push", url, f"{branch}:refs/heads/{branch}"], capture_output=True, text=True,
                          timeout=30, check=False, env={"PATH": "/usr/bin:/bin", "GIT_TERMINAL_PROMPT": "0"})
    assert late.returncode != 0, "the first attempt's token still pushes"

    tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
    assert git(world.layout.repo, "log", "--format=%s", "-1", branch) == "pushed work 2"
    second = world.layout.run_dir(task.id, 2)
    assert "push: accepted" in (second / "output.log").read_text()
    assert not (second / GATE_DIR / STAGING).exists()
    assert token.encode() not in everything_under(world.layout.state_dir)


def test_without_the_setting_the_agent_has_no_remote_to_push_to(git_repo: Path, tmux_socket: str,
                                                                  podman: Podman) -> None:
    config = push_config(podman).replace("push_credential = true\n", "")
    world, _, _ = make_world(git_repo, tmux_socket, extra=config)
    try:
        task = spawn(world, "go")
        state = tick_until(world, lambda s: s.tasks[task.id].status is Status.ready)
        text = (world.layout.run_dir(task.id, 1) / "output.log").read_text()
        assert "push: refused" in text and "accepted" not in text, text
        assert not (world.layout.run_dir(task.id, 1) / GATE_DIR).exists()
        assert state.tasks[task.id].attempts[0].exit_code == 0
        assert git(world.layout.repo, "log", "--format=%s", "-1", BRANCH.replace("t1", task.id)) == "pushed work 1"
    finally:
        runtime = world.runner.runtimes["container:far"]
        for name in runtime.panes() or {}:
            runtime.kill(name)
