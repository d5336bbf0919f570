"""`swarm doctor`: one line per thing swarm depends on, each with the fix when it is wrong."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from monitor.agents import commit_problem
from monitor.runtime.base import CONTAINER
from monitor.world import proc
from monitor.world.git import Git, GitError
from monitor.world.tmux import Tmux, TmuxError
from orchestrator.config import CONFIG_NAME, ConfigError, Settings, load
from orchestrator.init import NO_COMMITS, unborn_branch
from orchestrator.notifiers import slack_check
from orchestrator.wiring import find_repo, profiles_from
from registry.store import Registry, RegistryError

Check = tuple[bool, str]


def _version(argv: list[str]) -> str:
    try:
        result = proc.run(argv, timeout=10)
    except (OSError, proc.ProcTimeout) as exc:
        return f"error: {exc}"
    return (result.stdout or result.stderr).strip().splitlines()[0] if result.ok else "error"


def run_doctor(cwd: Path) -> Iterator[Check]:
    git_path = shutil.which("git")
    if git_path is None:
        yield False, "git: not found — install git (apt-get install git)"
    else:
        line = _version(["git", "--version"])
        try:
            parts = tuple(int(p) for p in line.split()[2].split(".")[:2])
        except (IndexError, ValueError):
            parts = (0, 0)
        good = parts >= (2, 38)
        yield good, f"git: {line}" + ("" if good else " — swarm needs git ≥ 2.38 (merge-tree --write-tree)")
    if shutil.which("tmux") is None:
        yield False, "tmux: not found — install tmux (apt-get install tmux)"
    else:
        yield True, f"tmux: {_version(['tmux', '-V'])}"
    try:
        repo = find_repo(cwd)
        settings = load(repo / CONFIG_NAME)
    except ConfigError as exc:
        yield False, f"config: {exc}"
        return
    yield True, f"config: {repo / CONFIG_NAME} is valid (forge {settings.project.forge})"
    base = settings.project.base_branch
    try:
        head = Git(repo).head(base)
    except GitError as exc:
        head, problem = None, str(exc)
    else:
        problem = f"branch {base!r} does not exist"
    if head is None and unborn_branch(repo):
        yield False, f"base branch: {NO_COMMITS}"
    else:
        yield (True, f"base branch: {base} at {head[:10]}") if head else (
            False, f"base branch: {problem} — set project.base_branch in {CONFIG_NAME}")
    profiles = profiles_from(settings)
    routed: dict[str, list[str]] = {}
    for kind, name in sorted(settings.routing.items()):
        routed.setdefault(name, []).append(kind)
    boxed = {name for name, profile in profiles.items() if (profile.runtime or settings.runtime.default) == CONTAINER}
    for name in sorted({*routed, *settings.agents}):
        binary = profiles[name].command[0]
        found = shutil.which(binary)
        used = f"routing: {', '.join(routed[name])}" if name in routed else "not routed"
        if name in boxed:  # its command is in the image: the container checks below look for it there
            found = f"runs in a container ({settings.runtime.container.image})"
        yield (found is not None or name not in routed,
               f"agent {name} ({used}): {found}" if found else
               f"agent {name} ({used}): `{binary}` not on PATH — install it or change [agents.{name}]")
        problem = commit_problem(profiles[name])
        if problem:  # the agent would run, do the work and lose it: every attempt a phantom
            yield name not in routed, f"agent {name} ({used}): {problem}"
    if boxed & set(routed):
        yield from _containers(repo, settings, sorted({profiles[n].command[0] for n in boxed & set(routed)}))
    registry = Registry(repo / ".swarm")
    try:
        registry.check_writable()
        state = registry.read()
        yield True, f"registry: {len(state.tasks)} task(s), serial {state.serial}"
    except RegistryError as exc:
        yield False, f"registry: {exc}"
    tmux = Tmux(settings.monitor.tmux_socket)
    try:
        panes = tmux.panes()
        yield True, ("tmux server: not running (it starts with the first agent)" if panes is None else
                     f"tmux server: {len(panes)} session(s) on socket {settings.monitor.tmux_socket!r}")
    except TmuxError as exc:
        yield False, f"tmux server: {exc}"
    if settings.project.forge == "github":
        yield from _github(repo, settings)
    yield slack_check(settings)
    if settings.sentry.org or settings.sentry.project:
        from orchestrator.discovery.sentry import check as sentry_check

        yield sentry_check(settings.sentry, os.environ.get(settings.sentry.token_env, ""))
    dsn = os.environ.get(settings.sentry.dsn_env, "").strip()
    yield True, (f"self-monitoring: errors and check-ins of monitor {settings.sentry.monitor_slug!r} go to Sentry"
                 if dsn else f"self-monitoring: off (set ${settings.sentry.dsn_env} to a DSN to be told when the "
                 "monitor stops ticking)")
    yield from _anthropic(settings)
    yield _service(repo, settings)


def _github(repo: Path, settings: Settings) -> Iterator[tuple[bool, str]]:
    """The token (or the App installation) is accepted and can see the repository, the webhook secret is
    set and long enough, and swarm's webhook is in place and was last delivered (where the token may read
    hooks)."""
    from monitor.world.forge import ForgeUnavailable
    from orchestrator.github_setup import api_from, app_checks, hook_checks, secret_check

    gh = settings.github
    secret = secret_check(settings)
    if not gh.app_id and not os.environ.get(gh.token_env, "").strip():
        yield False, f"github: no token in ${gh.token_env}; export it (see the README for its permissions)"
        yield secret
        return
    try:
        api = api_from(repo, settings)
    except ConfigError as exc:
        yield False, f"github app: {exc}"
        yield secret
        return
    try:
        if api.app is not None:
            checks = list(app_checks(api))
            yield from checks
            if not all(good for good, _ in checks[:1]):
                yield secret
                return
            branch = api.rest("doctor", lambda r: r.default_branch)
            yield True, f"github: {gh.repo} reachable at {gh.api_url} as the App (default branch {branch})"
        else:
            user, scopes = api.whoami()
            shown = f"scopes {', '.join(scopes)}" if scopes else "fine-grained or app token (no classic scopes)"
            yield True, f"github token: accepted for {user} ({shown})"
            branch, push = api.rest("doctor",
                                    lambda r: (r.default_branch, bool(r.permissions and r.permissions.push)))
            yield push, (f"github: {gh.repo} reachable at {gh.api_url} (default branch {branch})" if push else
                         f"github: {gh.repo} is read-only for this token — give it Contents and Pull requests "
                         "read/write (the monitor pushes branches and opens PRs)")
        yield secret
        yield from hook_checks(api, secret_set=bool(os.environ.get(gh.webhook_secret_env, "").strip()))
    except ForgeUnavailable as exc:
        yield False, f"github: {exc}"
    except Exception as exc:  # PyGithub's errors: 401 bad token, 404 no access
        status = int(getattr(exc, "status", 0) or 0)
        hint = {401: "the token was rejected; create a new one", 404: "the repository is not visible to this "
                "token; check github.repo and the token's repository access"}.get(status, "check api_url and the token")
        yield False, f"github: {gh.repo}: {status or type(exc).__name__}: {hint}"
    finally:
        api.close()


def _containers(repo: Path, settings: Settings, commands: list[str]) -> Iterator[Check]:
    """Each engine a routed profile's attempts may run on: reachable, the image there, and a container
    that commits in a throwaway worktree with an attempt's mounts, user and git identity."""
    from monitor.layout import Layout
    from monitor.runner import Runner
    from monitor.runtime.container import ContainerRuntime
    from monitor.runtime.probe import commit_check, engine_check, gate_check, image_check
    from orchestrator.wiring import runtimes_from

    layout = Layout.for_repo(repo, settings.project.worktree_root)
    runner = Runner(layout, Tmux(settings.monitor.tmux_socket), Git(repo), profiles_from(settings))
    common = runner.git_common_dir()
    mounts = [(common, False)] + [(common / name, True) for name in ("hooks", "config") if (common / name).exists()]
    identity = runner._git_identity()
    hosts = settings.runtime.container.hosts
    if hosts:
        total, most = sum(h.slots for h in hosts), settings.monitor.max_parallel
        listed = ", ".join(f"{h.label} {h.slots}" for h in hosts)
        yield True, (f"container hosts: {total} slot(s) in all ({listed}), filled in this order" + (
            f"; monitor.max_parallel = {most} is more, so some attempts will wait for a slot (set it to {total} "
            "or add slots)" if most > total else ""))
    for key, runtime in sorted(runtimes_from(layout, settings).items()):
        if not isinstance(runtime, ContainerRuntime):
            continue
        label = "container engine" if key == CONTAINER else f"container host {key.removeprefix(CONTAINER + ':')}"
        reachable, line = engine_check(runtime, label)
        yield reachable, line
        if not reachable:
            continue
        present, line = image_check(runtime)
        yield present, line
        if present:
            yield commit_check(runtime, repo, layout.worktree_root, mounts, identity, commands)
            if getattr(runtime, "push", None) is not None:
                yield gate_check(runtime)


def _anthropic(settings: Settings) -> Iterator[Check]:
    """The model key, only when one is configured: the monitor never needs it (planning and reviews do)."""
    name = settings.llm.api_key_env
    key = os.environ.get(name, "").strip()
    lenses = [r for r in settings.done.reviewers if r.startswith("swarm:")]
    if not key:
        if lenses:
            yield False, (f"anthropic: no key in ${name}, but done.reviewers has {', '.join(lenses)}: the AI "
                          "reviews cannot run — export the key where the agents' tmux server gets its environment")
        else:
            yield True, f"anthropic: no key in ${name} (only `swarm submit` planning and AI reviews use one)"
        return
    import anthropic

    client = anthropic.Anthropic(api_key=key, max_retries=0, timeout=15.0)
    try:
        client.models.retrieve(settings.llm.model)
        yield True, f"anthropic: key accepted, model {settings.llm.model} available"
    except anthropic.AuthenticationError:
        yield False, f"anthropic: the key in ${name} was rejected (401) — create a new key"
    except anthropic.NotFoundError:
        yield False, f"anthropic: model {settings.llm.model!r} not found — fix llm.model in {CONFIG_NAME}"
    except anthropic.APIError as exc:
        yield False, f"anthropic: {type(exc).__name__} — check the network or ANTHROPIC_BASE_URL"


def _service(repo: Path, settings: Settings) -> Check:
    """The timer (or the daemon unit) and its last run; cron users are told, not failed."""
    from orchestrator.systemd import timer_status

    ok, line = timer_status(repo, settings)
    if not ok and "not installed" in line:
        return True, f"{line} (fine if cron or your own supervisor runs `swarm monitor run-once`)"
    return ok, line
