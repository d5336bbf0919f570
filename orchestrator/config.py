"""The one typed settings tree, loaded once from ``swarm.toml`` at the CLI edge and passed down.

Unknown keys and bad values are one-line errors naming the key and the file. Secrets never live here:
``*_env`` keys name the environment variables that hold them.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orchestrator.config_base import Duration, Section
from orchestrator.config_work import (
    AfterMergeSettings,
    BudgetSettings,
    DiscoverySettings,
    MergeSettings,
    PlanSettings,
    ServeSettings,
)

CONFIG_NAME = "swarm.toml"


class ConfigError(Exception):
    """Bad or missing configuration; the CLI prints the message and exits 2."""


class ProjectSettings(Section):
    base_branch: str = "main"
    forge: Literal["local", "github"] = "local"
    setup: str = ""
    worktree_root: str = ""  # default: ../<repo>.swarm next to the repository
    setup_timeout: Duration = 1800.0


class MonitorSettings(Section):
    interval: Duration = 300.0
    max_attempts: int = Field(3, ge=1, le=20)
    stuck_after: Duration = 1200.0
    attempt_timeout: Duration = 7200.0
    max_parallel: int = Field(4, ge=1, le=200)
    max_respawns_per_tick: int = Field(4, ge=1)
    api_backoff: Duration = 60.0  # after the agent's provider fails (api_error): the first wait, doubled each time
    api_backoff_max: Duration = 1800.0  # the longest wait; also the window in which API errors are one outage
    api_error_attempts: int = Field(5, ge=0, le=100)  # attempts per task lost to outages not counted in max_attempts
    outage_tasks: int = Field(3, ge=1)  # this many tasks hit within the window: one fleet-wide notification
    tmux_socket: str = "swarm"  # unset in swarm.toml: one socket per repository (monitor/sockets.py)

    @field_validator("stuck_after", "attempt_timeout")
    @classmethod
    def _patience(cls, value: float) -> float:
        if value < 60:
            raise ValueError(f"{value:g}s would kill agents that are only thinking; give at least \"1m\" "
                             "(e.g. \"20m\")")
        return value

    @field_validator("tmux_socket")
    @classmethod
    def _socket(cls, value: str) -> str:
        if not value.strip() or re.search(r"[\s\x00-\x1f\x7f]", value):
            raise ValueError(f"{value!r} is not a tmux socket name: give a name like \"swarm\" (tmux -L) or a path")
        return value


class DoneSettings(Section):
    commits: bool = True
    pr: bool = True
    no_conflict: bool = True
    up_to_date: bool = False
    ci: bool = True
    reviews: int = Field(0, ge=0)
    reviewers: list[str] = []
    screenshots_for: list[str] = []


class LocalSettings(Section):
    ci: str = ""
    ci_timeout: Duration = 1800.0
    reviewers: dict[str, str] = {}


class GithubSettings(Section):
    repo: str = ""  # "owner/name"
    api_url: str = "https://api.github.com"  # GitHub Enterprise: "https://HOST/api/v3"
    token_env: str = "GITHUB_TOKEN"
    webhook_secret_env: str = "SWARM_GITHUB_WEBHOOK_SECRET"  # `swarm serve` checks X-Hub-Signature-256 with it
    remote: str = "origin"  # the git remote the monitor fetches the base from and pushes branches to
    app_id: str = ""  # authenticate as this GitHub App (its id or client id) instead of with token_env
    installation_id: int = Field(0, ge=0)  # the App's installation on the repository's owner
    private_key_env: str = ""  # the variable holding the App's PEM private key ...
    private_key_file: str = ""  # ... or a file with it that only you may read (relative to the repository)
    ci_grace: Duration = 120.0  # a head with no checks yet is "waiting for CI" this long, then "no CI"
    timeout: Duration = 15.0  # per request
    intake_label: str = Field("swarm", min_length=1, max_length=50)  # open issues with it become tasks
    intake_every: Duration = 0.0  # 0 = only `swarm discover github` and `issues` webhooks; else polled this often
    intake_anyone: bool = False  # issues opened by people without write access become tasks too
    intake_max_new: int = Field(5, ge=1, le=100)  # tasks made from issues per run

    @field_validator("app_id", mode="before")
    @classmethod
    def _app_id(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _app_complete(self) -> GithubSettings:
        if self.app_id and not self.installation_id:
            raise ValueError("app_id needs installation_id (the number at the end of the installation's settings "
                             "URL)")
        if self.app_id and not (self.private_key_env or self.private_key_file):
            raise ValueError("app_id needs private_key_env (a variable with the PEM key) or private_key_file")
        return self

    @property
    def uses_app(self) -> bool:
        return bool(self.app_id)

    @field_validator("repo")
    @classmethod
    def _owner_name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
            raise ValueError(f"{value!r} is not \"owner/name\" (e.g. \"acme/shop\")")
        return value

    @field_validator("api_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not an http(s) URL (GitHub Enterprise: \"https://HOST/api/v3\")")
        return value.rstrip("/")


class SlackSettings(Section):
    token_env: str = "SLACK_BOT_TOKEN"  # a bot token (chat:write): one thread per task, status kept current
    channel: str = ""  # channel id or name for the bot token
    api_url: str = "https://slack.com/api/"
    webhook_url_env: str = "SLACK_WEBHOOK_URL"  # or only an incoming webhook: flat messages
    timeout: Duration = 10.0


class SentrySettings(Section):
    url: str = "https://sentry.io"
    org: str = ""
    project: str = ""
    token_env: str = "SENTRY_AUTH_TOKEN"  # discovery (API): project:read, event:read
    dsn_env: str = "SENTRY_DSN"  # self-monitoring (sentry-sdk): the monitor's own errors and cron check-ins
    discover_every: Duration = 0.0  # 0 = only `swarm discover sentry`; else run by the daemon or the timer
    query: str = ""  # extra Sentry search terms, added to "is:unresolved"
    first_seen_within: Duration = 86400.0  # only issues first seen this recently (regressions always count)
    min_events: int = Field(10, ge=0)  # an issue qualifies with at least min_events events ...
    min_users: int = Field(3, ge=0)  # ... or at least min_users users
    max_new_tasks: int = Field(3, ge=1, le=100)  # per run
    environment: str = ""
    kind: str = "bugfix"  # the task kind of discovered tasks (routing picks the agent)
    monitor_slug: str = "swarm-monitor"  # the cron monitor the tick checks in to
    timeout: Duration = 15.0


class CleanupSettings(Section):
    every: Duration = 86400.0  # the monitor runs the cleanup this often (0 = only `swarm cleanup`)
    archive_after: Duration = 14 * 86400.0  # finished tasks older than this move to .swarm/archive/


class LlmSettings(Section):
    model: str = "claude-sonnet-5-5"  # Sonnet 4.5 retires on 2026-11-30
    api_key_env: str = "ANTHROPIC_API_KEY"
    max_tasks: int = Field(8, ge=1, le=50)  # a plan is capped at this many tasks
    min_task_chars: int = Field(200, ge=0)  # tasks whose description + criteria are shorter are merged
    max_tokens: int = Field(8192, ge=256)  # per answer
    timeout: Duration = 120.0
    task_token_budget: int = Field(0, ge=0)  # older name of [budget] per_task_tokens (used when that is 0)
    retry_prompts: bool = True  # with a key, retry prompts are rewritten by the model (template on any error)


class ReviewLens(Section):
    focus: str = ""  # what this reviewer looks for; built-in lenses have one
    model: str = ""  # default: llm.model


BUILTIN_LENSES = {
    "logic": "logic errors and unhandled edge cases: wrong conditions, off-by-one, None/empty inputs, error "
             "paths, races, resource leaks, and tests that do not test what they claim",
    "security": "security: injection (SQL, shell, path), secrets in code or logs, missing authorization checks, "
                "unsafe deserialization, SSRF, weak crypto, untrusted input reaching dangerous sinks",
    "architecture": "architecture and contracts: the shared contracts and file ownership of the plan are "
                    "respected, public interfaces match their specification, no duplicated logic, no layering "
                    "violations, names and module boundaries that fit the codebase",
}


class ModelPrice(Section):
    """``[pricing."gpt-5.5"]``: USD per million tokens (cached input defaults to the input price)."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)


class ReviewSettings(Section):
    """AI reviewers: `done.reviewers = ["swarm:logic", "swarm:security"]` runs these lenses once per head."""

    lenses: dict[str, ReviewLens] = {}  # logic, security, architecture are built in; add your own
    max_diff_chars: int = Field(80000, ge=1000)
    timeout: Duration = 900.0

    def lens(self, name: str) -> ReviewLens | None:
        if name in self.lenses:
            found = self.lenses[name]
            return found if found.focus else found.model_copy(update={"focus": BUILTIN_LENSES.get(name, "")})
        return ReviewLens(focus=BUILTIN_LENSES[name]) if name in BUILTIN_LENSES else None


class ContextSettings(Section):
    paths: list[str] = ["docs/context"]
    budget_tokens: int = Field(6000, ge=0)  # business context per request, by relevance
    learnings: str = ".swarm/learnings.md"  # written by `swarm learn`, read into every prompt


class ContainerHost(Section):
    """``[[runtime.container.hosts]]``: one more engine that takes attempts, up to ``slots`` at a time."""

    engine: str  # its Docker Engine API URL (unix://, tcp:// or ssh://)
    slots: int = Field(ge=1, le=500)  # how many agents it may run at once (all of swarm's repositories together)
    name: str = ""  # as attempts record it ("container:<name>"); default: the engine URL
    # the host sees the worktree at the same path (this machine, a shared mount); false: the branch is pushed
    # into the container and the agent's commits fetched back (docs/runtimes.md)
    shares_worktree: bool = True
    # shares_worktree = false only: the agent may push its branch (only it) to a per-attempt endpoint of the
    # monitor with a per-attempt token, never to the forge; listened on push_listen, reached at push_host
    push_credential: bool = False
    push_listen: str = "127.0.0.1"
    push_host: str = ""  # the address the container reaches this machine at; "" = push_listen
    push_force: bool = False  # take non-fast-forward pushes (an agent that rebases its branch)

    @model_validator(mode="after")
    def _push(self) -> ContainerHost:
        if self.push_credential and self.shares_worktree:
            raise ValueError("push_credential needs shares_worktree = false (on a host that sees the worktree the "
                             "agent's commits are on the branch already)")
        for value in (self.push_listen, self.push_host):
            if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.:-]{0,252}", value):
                raise ValueError(f"{value!r} is not a host name or address (push_listen, push_host)")
        return self

    @field_validator("engine")
    @classmethod
    def _engine(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("empty: give the host's Docker Engine API URL (e.g. \"ssh://build2\")")
        return value.strip()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if value and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError(f"{value!r} is not a host name: letters, digits, '.', '_' and '-' (e.g. \"build2\")")
        return value

    @property
    def label(self) -> str:
        return self.name or self.engine


class ContainerSettings(Section):
    engine: str = ""  # Docker Engine API URL; "" = DOCKER_HOST, else the local Docker or Podman socket
    image: str = ""  # the user's image with their toolchain, git and the agent CLI
    network: str = "bridge"  # or "none", or a named network
    memory: str = "4g"
    cpus: float = Field(2.0, gt=0)
    pids: int = Field(1024, ge=16)
    hosts: list[ContainerHost] = []  # several engines: attempts go to the first listed with a free slot

    @field_validator("memory")
    @classmethod
    def _size(cls, value: str) -> str:
        from monitor.runtime.container import parse_size

        parse_size(value)
        return value

    @field_validator("hosts")
    @classmethod
    def _distinct(cls, value: list[ContainerHost]) -> list[ContainerHost]:
        seen: set[str] = set()
        for host in value:
            if host.label in seen:
                raise ValueError(f"host {host.label!r} is listed twice: give each [[runtime.container.hosts]] its "
                                 "own engine or name")
            seen.add(host.label)
        return value


class RuntimeSettings(Section):
    default: Literal["tmux", "container"] = "tmux"  # where agents run unless their profile says otherwise
    container: ContainerSettings = ContainerSettings()


class Settings(Section):
    project: ProjectSettings = ProjectSettings()
    agents: dict[str, dict[str, Any]] = {}
    pricing: dict[str, ModelPrice] = {}  # extends and overrides monitor/pricing.py's table, by model name
    routing: dict[str, str] = {"default": "claude"}
    monitor: MonitorSettings = MonitorSettings()
    done: DoneSettings = DoneSettings()
    local: LocalSettings = LocalSettings()
    github: GithubSettings = GithubSettings()
    slack: SlackSettings = SlackSettings()
    sentry: SentrySettings = SentrySettings()
    cleanup: CleanupSettings = CleanupSettings()
    review: ReviewSettings = ReviewSettings()
    llm: LlmSettings = LlmSettings()
    context: ContextSettings = ContextSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    serve: ServeSettings = ServeSettings()
    merge: MergeSettings = MergeSettings()
    plan: PlanSettings = PlanSettings()
    budget: BudgetSettings = BudgetSettings()
    discovery: DiscoverySettings = DiscoverySettings()
    after_merge: AfterMergeSettings = AfterMergeSettings()

    @field_validator("routing")
    @classmethod
    def _default_route(cls, value: dict[str, str]) -> dict[str, str]:
        return value if "default" in value else {**value, "default": "claude"}

    def secret_env_names(self) -> list[str]:
        """Environment variables holding swarm's own secrets: never handed to an agent."""
        return [
            self.github.token_env,
            self.github.webhook_secret_env,
            self.slack.token_env,
            self.slack.webhook_url_env,
            self.sentry.token_env,
            self.sentry.dsn_env,
            "GH_TOKEN",
            self.serve.token_env,
            *([self.github.private_key_env] if self.github.private_key_env else []),
        ]


def _describe(exc: ValidationError, path: Path) -> str:
    first = exc.errors()[0]
    key = ".".join(str(part) if str(part).isprintable() else repr(part) for part in first["loc"]) or "(top level)"
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key (check the spelling; see the README for the keys swarm knows)"
    extra = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{path}: {key}: {message}{extra}"


def load(path: Path) -> Settings:
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run `swarm init` in the repository first") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    settings = parse(raw, path)
    monitor = raw.get("monitor")
    if not (isinstance(monitor, dict) and "tmux_socket" in monitor):
        settings = _with_default_socket(settings, path)
    return settings


def _with_default_socket(settings: Settings, path: Path) -> Settings:
    """No ``tmux_socket`` in the file: one socket per repository (or the pinned old ``swarm``, see
    :mod:`monitor.sockets`), so two repositories never share a tmux server unless told to."""
    from monitor.layout import Layout
    from monitor.sockets import default_socket

    layout = Layout.for_repo(path.resolve().parent, settings.project.worktree_root)
    monitor = settings.monitor.model_copy(update={"tmux_socket": default_socket(layout)})
    return settings.model_copy(update={"monitor": monitor})


def parse(raw: dict[str, Any], path: Path) -> Settings:
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    from monitor.agents import resolve_profiles  # validated here so a bad profile fails at load time
    from monitor.pricing import Price, use_table

    use_table({model: Price(p.input, p.output, p.input if p.cached_input is None else p.cached_input)
               for model, p in settings.pricing.items()})

    try:
        profiles = resolve_profiles(settings.agents)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    in_containers = [name for name, profile in profiles.items()
                     if (profile.runtime or settings.runtime.default) == "container"]
    if in_containers and not settings.runtime.container.image.strip():
        raise ConfigError(f"{path}: runtime.container.image: required when agents run in containers (profile "
                          f"{in_containers[0]!r}); name the image with your toolchain, git and the agent's CLI")
    if settings.runtime.container.hosts and settings.runtime.container.engine.strip():
        raise ConfigError(f"{path}: runtime.container.engine: set with [[runtime.container.hosts]]; list this "
                          "engine as a host too (with its slots) and remove engine")
    for kind, name in settings.routing.items():
        if name not in profiles:
            raise ConfigError(
                f"{path}: routing.{kind}: unknown agent profile {name!r} (known: {', '.join(sorted(profiles))})"
            )
    if settings.project.forge == "github" and not settings.github.repo:
        raise ConfigError(f"{path}: github.repo: required with forge = \"github\" (e.g. repo = \"acme/shop\")")
    if settings.project.forge == "github" and not settings.done.pr:
        raise ConfigError(f"{path}: done.pr: must be true with forge = \"github\" (CI and reviews are read from "
                          "the pull request); use forge = \"local\" to work without pull requests")
    for name in settings.done.reviewers:
        lens = name.removeprefix("swarm:")
        if name.startswith("swarm:") and settings.review.lens(lens) is None:
            raise ConfigError(f"{path}: done.reviewers: {name!r} is not a review lens (built in: "
                              f"{', '.join('swarm:' + n for n in BUILTIN_LENSES)}; add [review.lenses.{lens}] focus)")
    if settings.project.forge == "local":
        named = settings.done.reviewers
        runnable = ([r for r in named if r in settings.local.reviewers or r.startswith("swarm:")] if named
                    else list(settings.local.reviewers))
        if settings.done.reviews > len(runnable):
            raise ConfigError(
                f"{path}: done.reviews: needs {settings.done.reviews} approval(s) but only {len(runnable)} of the "
                "reviewers can run on the local forge (each of done.reviewers needs a command in [local] "
                "reviewers); lower done.reviews or add the commands"
            )
    return settings
