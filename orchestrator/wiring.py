"""The one place where settings become real adapters: tests build a World their own way."""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from monitor.agents import AgentProfile, resolve_profiles
from monitor.layout import Layout
from monitor.policy import DonePolicy, Policy
from monitor.retry import RetryPrompter, TemplateRetryPrompter
from monitor.runner import Runner, SetupSpec
from monitor.runtime.base import CONTAINER, Runtime
from monitor.runtime.hosts import HostPool, PlacingRunner
from monitor.statedir import ensure_state_dir
from monitor.tick import World
from monitor.world.forge import Forge
from monitor.world.git import Git
from monitor.world.local import LocalForge
from monitor.world.notify import Notifier
from monitor.world.tmux import Tmux
from orchestrator.budget import limits_from
from orchestrator.config import CONFIG_NAME, ConfigError, Settings, load
from orchestrator.errors import UsageError
from orchestrator.notifiers import notifier_from
from orchestrator.view import find_repo, register_secrets, utc_now
from registry.events import EventLog
from registry.store import Registry

if TYPE_CHECKING:
    from monitor.world.github_auth import InstallationTokens


def policy_from(settings: Settings) -> Policy:
    done = settings.done
    return Policy(
        max_attempts=settings.monitor.max_attempts,
        stuck_after=settings.monitor.stuck_after,
        attempt_timeout=settings.monitor.attempt_timeout,
        max_parallel=settings.monitor.max_parallel,
        max_respawns_per_tick=settings.monitor.max_respawns_per_tick,
        api_backoff=settings.monitor.api_backoff,
        api_backoff_max=settings.monitor.api_backoff_max,
        api_error_attempts=settings.monitor.api_error_attempts,
        outage_tasks=settings.monitor.outage_tasks,
        token_budget=settings.llm.task_token_budget,
        stack=settings.plan.stack_mode,
        restack=settings.plan.restack,
        merge_mode=settings.merge.mode, merge_method=settings.merge.method,
        budget=limits_from(settings), timezone=settings.budget.timezone,
        done=DonePolicy(
            commits=done.commits, pr=done.pr, no_conflict=done.no_conflict, up_to_date=done.up_to_date,
            ci=done.ci, reviews=done.reviews, reviewers=tuple(done.reviewers),
            screenshots_for=tuple(done.screenshots_for),
        ),
    )


def profiles_from(settings: Settings) -> dict[str, AgentProfile]:
    return resolve_profiles(settings.agents)


def lens_commands(layout: Layout, settings: Settings) -> dict[str, str]:
    """The job command of each `swarm:<lens>` reviewer: `swarm review-run` in the worktree, per head."""
    from orchestrator.systemd_names import default_swarm_argv

    argv = shlex.join(default_swarm_argv())
    return {
        name: f"{argv} review-run {{task}} --lens {shlex.quote(name.removeprefix('swarm:'))} --head {{head}} "
              f"--repo {shlex.quote(str(layout.repo))}"
        for name in settings.done.reviewers if name.startswith("swarm:")
    }


def github_forge(
    layout: Layout, git: Git, settings: Settings, need_token: bool = True, runner: Runner | None = None
) -> Forge:
    """The GitHub forge; imported here only, so a local setup never loads PyGithub. Commands that do not
    talk to GitHub (status, logs, spawn) work without the token: GitHub then reads as "unavailable"."""
    from monitor.world.github import GitHubForge
    from monitor.world.github_api import GitHubApi, GitHubConfig

    gh = settings.github
    app = app_tokens(layout.repo, settings, need=need_token)
    token = "" if gh.app_id else os.environ.get(gh.token_env, "").strip()
    if not token and not app and need_token:
        raise ConfigError(
            f"{layout.repo / CONFIG_NAME}: project.forge = \"github\" needs a token in the environment variable "
            f"{gh.token_env} (github.token_env); export it, or put it in the service's EnvironmentFile"
        )
    config = GitHubConfig(repo=gh.repo, api_url=gh.api_url, token=token, state_path=layout.state_dir / "github.json",
                          remote=gh.remote, timeout=gh.timeout, ci_grace=gh.ci_grace)
    from monitor.world.jobs import LensJobs

    lenses = lens_commands(layout, settings)
    jobs = LensJobs(layout, runner, lenses, settings.review.timeout) if lenses and runner is not None else None
    return GitHubForge(GitHubApi(config, app=app), git, layout.state_dir, wanted_reviewers=settings.done.reviewers,
                       jobs=jobs)


def app_tokens(repo: Path, settings: Settings, need: bool = True) -> InstallationTokens | None:
    """The GitHub App installation's tokens when ``[github] app_id`` is set, else None (the personal token).
    The private key is read now (one-line error when it cannot be, if ``need``), masked in every log line,
    and kept in memory only."""
    gh = settings.github
    if not gh.app_id:
        return None
    from monitor.redact import register_secret_values
    from monitor.world.github_auth import AppCredentials, AppKeyError, InstallationTokens, read_private_key

    try:
        key = read_private_key(gh.private_key_env, gh.private_key_file, base=repo)
    except AppKeyError as exc:
        if need:
            raise ConfigError(f"{repo / CONFIG_NAME}: {exc}") from None
        return None
    register_secret_values([key, *key.splitlines()])
    return InstallationTokens(AppCredentials(gh.app_id, gh.installation_id, key), gh.api_url, timeout=gh.timeout)


def retry_prompter_from(
    settings: Settings, registry: Registry, environ: Mapping[str, str] | None = None
) -> RetryPrompter:
    """The model rewrites retry prompts when ``llm.retry_prompts`` is on and a key is set; else the template.

    Lazy: neither ``anthropic`` nor the client is loaded here (``llm_from`` builds the SDK client), only on
    the first retry prompt, so a tick with nothing to retry costs no import and no token.
    """
    env = os.environ if environ is None else environ
    if not settings.llm.retry_prompts or not env.get(settings.llm.api_key_env, "").strip():
        return TemplateRetryPrompter()
    from orchestrator.brain.llm import llm_from
    from orchestrator.brain.retry_llm import LlmRetryPrompter, registry_recorder

    return LlmRetryPrompter(lambda: llm_from(settings, env), record_usage=registry_recorder(registry))


def runtimes_from(layout: Layout, settings: Settings) -> dict[str, Runtime]:
    """The container runtime when an image is configured (its engine is only contacted when an attempt runs
    there); tmux is always there (the Runner adds it)."""
    container = settings.runtime.container
    if not container.image.strip():
        return {}
    from monitor.runtime.container import ContainerRuntime, Limits

    pool = host_pool_from(layout, settings)
    if pool is not None:
        return pool.runtimes()
    limits = Limits(memory=container.memory, cpus=container.cpus, pids=container.pids)
    return {CONTAINER: ContainerRuntime(container.engine, image=container.image, owner=str(layout.repo),
                                        network=container.network, limits=limits)}


def host_pool_from(layout: Layout, settings: Settings) -> HostPool | None:
    """The engines of ``[[runtime.container.hosts]]`` (None when none are listed): one ContainerRuntime each,
    recorded by attempts as ``container:<name>``."""
    container = settings.runtime.container
    if not container.hosts or not container.image.strip():
        return None
    from monitor.runtime.container import ContainerRuntime, Limits
    from monitor.runtime.placement import Host
    from monitor.runtime.pushgate import PushSettings
    from monitor.runtime.remote import RemoteContainerRuntime

    limits = Limits(memory=container.memory, cpus=container.cpus, pids=container.pids)
    return HostPool([(Host(host.label, host.slots),
                      ContainerRuntime(host.engine, image=container.image, owner=str(layout.repo),
                                       network=container.network, limits=limits) if host.shares_worktree
                      else RemoteContainerRuntime(
                          host.engine, image=container.image, owner=str(layout.repo), network=container.network,
                          limits=limits, push=PushSettings(host.push_listen, host.push_host, host.push_force)
                          if host.push_credential else None))
                     for host in container.hosts])


def build_world(repo: Path, settings: Settings, notifier: Notifier | None = None, need_forge: bool = False) -> World:
    layout = Layout.for_repo(repo, settings.project.worktree_root)
    ensure_state_dir(layout.state_dir)  # created here, git-excluded here: a fresh clone never shows ?? .swarm/
    register_secrets(settings)
    # Sessions tagged with (and only seen for) this repository; swarm's secrets in no tmux server or pane.
    tmux = Tmux(settings.monitor.tmux_socket, owner=str(layout.repo), roots=(layout.worktree_root,),
                hide_env=settings.secret_env_names())
    git = Git(layout.repo)
    setup = SetupSpec(settings.project.setup, settings.project.setup_timeout) if settings.project.setup else None
    pool = host_pool_from(layout, settings)
    if pool is None:
        runner = Runner(layout, tmux, git, profiles_from(settings), setup=setup,
                        unset_env=settings.secret_env_names(), forge_env=[settings.github.token_env, "GH_TOKEN"],
                        runtimes=runtimes_from(layout, settings), default_runtime=settings.runtime.default)
    else:  # several engines: each new container attempt is placed on a host with a free slot
        runner = PlacingRunner(layout, tmux, git, profiles_from(settings), setup=setup,
                               unset_env=settings.secret_env_names(), forge_env=[settings.github.token_env, "GH_TOKEN"],
                               runtimes=pool.runtimes(), default_runtime=settings.runtime.default, pool=pool)
    forge: Forge
    if settings.project.forge == "local":
        forge = LocalForge(layout, runner, git, ci=settings.local.ci, ci_timeout=settings.local.ci_timeout,
                           reviewers={**settings.local.reviewers, **lens_commands(layout, settings)},
                           wanted_reviewers=settings.done.reviewers)
    else:
        forge = github_forge(layout, git, settings, need_token=need_forge, runner=runner)
    return World(
        layout=layout, registry=Registry(layout.state_dir), events=EventLog(layout.events_path), tmux=tmux,
        git=git, runner=runner, forge=forge, notifier=notifier or notifier_from(settings, layout.state_dir),
        prompter=retry_prompter_from(settings, Registry(layout.state_dir)), policy=policy_from(settings),
        clock=utc_now,
    )


def load_world(
    start: Path | None = None, notifier: Notifier | None = None, need_forge: bool = False
) -> tuple[Settings, World]:
    repo = find_repo(start)
    settings = load(repo / CONFIG_NAME)
    return settings, build_world(repo, settings, notifier, need_forge=need_forge)


__all__ = ["UsageError", "build_world", "find_repo", "load_world", "register_secrets", "utc_now"]
