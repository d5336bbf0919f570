"""Setting GitHub up for `swarm serve`, and checking it: the repository's webhook (`swarm github hook install`)
and the lines `swarm doctor` prints about the App, the webhook secret, the hook and its last delivery.

Why here: both the command and the doctor need the same notion of "swarm's hook" (the one whose URL ends in
``/webhooks/github``, with the events the service reads, JSON, active) and the same GitHub client (a personal
token or the App installation of ``[github] app_id``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from orchestrator.config import CONFIG_NAME, ConfigError, Settings
from orchestrator.errors import OperationalError, UsageError

if TYPE_CHECKING:
    from github.Repository import Repository

    from monitor.world.github_api import GitHubApi

HOOK_PATH = "/webhooks/github"
MIN_SECRET_CHARS = 16
"""Shorter webhook secrets are refused: anyone who guesses one can make the service tick at will."""
APP_NEEDS = {"metadata": "read", "contents": "write", "pull_requests": "write", "checks": "read",
             "statuses": "read"}
"""What an App installation must be granted for the monitor (push branches, open PRs, read CI)."""
APP_WANTS = {"actions": ("read", "the job logs of failed checks"),
             "repository_hooks": ("write", "`swarm github hook install` and the doctor's hook check")}
Check = tuple[bool, str]


def hook_events() -> list[str]:
    """The events `swarm serve` reads, as the hook subscribes to them."""
    from orchestrator.serve.webhooks import EVENTS

    return sorted(EVENTS)


def api_from(repo: Path, settings: Settings, environ: Mapping[str, str] | None = None) -> GitHubApi:
    """The GitHub client of the configuration: the App installation when ``app_id`` is set, else the token."""
    from monitor.world.github_api import GitHubApi, GitHubConfig
    from orchestrator.wiring import app_tokens

    gh = settings.github
    env = os.environ if environ is None else environ
    app = app_tokens(repo, settings, need=True)
    token = "" if app is not None else env.get(gh.token_env, "").strip()
    if app is None and not token:
        raise ConfigError(f"{repo / CONFIG_NAME}: no GitHub token in ${gh.token_env} (github.token_env) and no "
                          "[github] app_id; export the token, or configure the App")
    config = GitHubConfig(repo=gh.repo, api_url=gh.api_url, token=token, state_path=repo / ".swarm" / "github.json",
                          remote=gh.remote, timeout=gh.timeout)
    return GitHubApi(config, app=app)


def webhook_secret(settings: Settings, environ: Mapping[str, str] | None = None) -> str:
    """The webhook secret from ``[github] webhook_secret_env``; a missing or short one is a one-line error."""
    env = os.environ if environ is None else environ
    name = settings.github.webhook_secret_env
    secret = env.get(name, "").strip()
    if not secret:
        raise UsageError(f"no webhook secret in ${name} (github.webhook_secret_env); set it to a long random string, "
                         f"e.g. `export {name}=$(openssl rand -hex 32)`, where `swarm serve` runs too")
    if len(secret) < MIN_SECRET_CHARS:
        raise UsageError(f"the webhook secret in ${name} has {len(secret)} characters; use at least "
                         f"{MIN_SECRET_CHARS} random ones (openssl rand -hex 32)")
    return secret


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", url):
        raise UsageError(f"--url {url!r} is not an http(s) URL; give where GitHub reaches `swarm serve`, e.g. "
                         f"https://swarm.example.com{HOOK_PATH}")
    return url


def is_swarm_hook(config: Mapping[str, Any]) -> bool:
    return urlsplit(str(config.get("url", ""))).path.rstrip("/").endswith(HOOK_PATH)


@dataclass(frozen=True)
class HookResult:
    action: str  # "created", "updated", "would create", "would update"
    hook_id: int | None
    url: str
    events: list[str]

    def line(self) -> str:
        which = f"webhook {self.hook_id}" if self.hook_id is not None else "a webhook"
        return (f"{self.action} {which} on {self.url}: events {', '.join(self.events)}; JSON; signed with the "
                "webhook secret; active")


def install_hook(api: GitHubApi, url: str, secret: str, dry_run: bool = False) -> HookResult:
    """Create the repository's webhook for ``url``, or update the one that already points there (never a
    second one): JSON, the service's events, signed with ``secret``, active."""
    from github import GithubException

    events = hook_events()
    config = {"url": url, "content_type": "json", "insecure_ssl": "0", "secret": secret}

    def apply(repo: Repository) -> HookResult:
        existing = next((h for h in repo.get_hooks() if h.config.get("url") == url), None)
        if existing is None:
            if dry_run:
                return HookResult("would create", None, url, events)
            created = repo.create_hook("web", config, events=events, active=True)
            return HookResult("created", created.id, url, events)
        if dry_run:
            return HookResult("would update", existing.id, url, events)
        existing.edit("web", config, events=events, active=True)
        return HookResult("updated", existing.id, url, events)

    try:
        return api.rest("webhook install", apply)
    except GithubException as exc:
        hint = {403: "the token may not manage webhooks: give it Webhooks read & write (an App: Repository "
                     "webhooks), or admin rights on the repository",
                404: "the repository is not visible to this token, or it may not manage webhooks",
                422: "GitHub refused the hook (is the URL reachable from GitHub, not a private address?)"}
        raise OperationalError(f"{api.config.repo}: GitHub answered {exc.status}: "
                               f"{hint.get(exc.status, 'check the token and the URL')}") from None


def secret_check(settings: Settings, environ: Mapping[str, str] | None = None) -> Check:
    env = os.environ if environ is None else environ
    name = settings.github.webhook_secret_env
    secret = env.get(name, "").strip()
    if not secret:
        return True, (f"webhook secret: ${name} not set — `swarm serve` refuses every webhook and relies on its "
                      "reconcile timer; set it to `openssl rand -hex 32` to react in seconds")
    if len(secret) < MIN_SECRET_CHARS:
        return False, (f"webhook secret: ${name} has only {len(secret)} characters; use at least "
                       f"{MIN_SECRET_CHARS} random ones (openssl rand -hex 32), then `swarm github hook install`")
    return True, f"webhook secret: ${name} set ({len(secret)} characters)"


def hook_checks(api: GitHubApi, secret_set: bool) -> Iterator[Check]:
    """swarm's webhook exists, is active, has the events and JSON, and its last delivery succeeded. A token
    that may not read hooks gets an info line, not a failure."""
    from github import GithubException

    def read(repo: Repository) -> tuple[list[Any], Any]:
        hooks = [h for h in repo.get_hooks() if is_swarm_hook(h.config)]
        last = next(iter(repo.get_hook_deliveries(hooks[0].id)), None) if hooks else None
        return hooks, last

    try:
        hooks, last = api.rest("webhook check", read)
    except GithubException as exc:
        if exc.status in (403, 404):
            yield True, (f"github webhook: this token may not read {api.config.repo}'s webhooks ({exc.status}); "
                         "not checked (give it Webhooks: read to let doctor check them)")
            return
        raise
    if not hooks:
        yield (not secret_set, f"github webhook: none points at a `swarm serve` (…{HOOK_PATH}); run `swarm github "
               f"hook install --url https://HOST{HOOK_PATH}`" + ("" if secret_set else " if you run it"))
        return
    hook = hooks[0]
    url = str(hook.config.get("url", ""))
    problems = []
    if not hook.active:
        problems.append("inactive")
    missing = [e for e in hook_events() if e not in hook.events and "*" not in hook.events]
    if missing:
        problems.append(f"misses events {', '.join(missing)}")
    if hook.config.get("content_type") != "json":
        problems.append("sends form data, not JSON")
    if problems:
        yield False, (f"github webhook {hook.id} → {url}: {'; '.join(problems)}; run `swarm github hook install "
                      f"--url {url}` to fix it")
        return
    yield True, f"github webhook {hook.id} → {url}: active, JSON, events {', '.join(hook_events())}"
    if last is None:
        yield True, f"github webhook {hook.id}: no delivery yet"
        return
    when = last.delivered_at.strftime("%Y-%m-%d %H:%M UTC") if last.delivered_at else "?"
    code = int(last.status_code or 0)
    if 200 <= code < 300:
        yield True, f"github webhook {hook.id}: last delivery ({last.event}, {when}) answered {code}"
    else:
        yield False, (f"github webhook {hook.id}: last delivery ({last.event}, {when}) failed: "
                      f"{code or 'no answer'} {last.status or ''}".rstrip()
                      + f" — is `swarm serve` running and reachable at {url}?")


def app_checks(api: GitHubApi) -> Iterator[Check]:
    """The App's JWT is accepted, its installation gives a token, and the token has the permissions swarm
    needs (missing ones named, with what they are for)."""
    from github import GithubException

    from monitor.world.forge import ForgeUnavailable

    app = api.app
    if app is None:
        return
    try:
        app.token()
        about = app.integration().get_app()
    except ForgeUnavailable as exc:
        yield False, f"github app: {exc}"
        return
    except GithubException as exc:
        yield False, f"github app {app.credentials.app_id}: GitHub answered {exc.status} to GET /app"
        return
    yield True, (f"github app: {about.slug} (app {app.credentials.app_id}), installation "
                 f"{app.credentials.installation_id}: token minted (renewed before it expires)")
    granted = app.permissions
    rank = {"read": 1, "write": 2, "admin": 3}
    lacking = [f"{k}: {v}" for k, v in APP_NEEDS.items() if rank.get(granted.get(k, ""), 0) < rank[v]]
    if lacking:
        yield False, (f"github app permissions: missing {', '.join(lacking)} — grant them in the App's settings, "
                      "then accept the new permissions on the installation")
    else:
        yield True, "github app permissions: " + ", ".join(f"{k} {granted[k]}" for k in APP_NEEDS)
    for key, (level, why) in APP_WANTS.items():
        if rank.get(granted.get(key, ""), 0) < rank[level]:
            yield True, f"github app permissions: no {key}: {level} (only {why} need it)"
