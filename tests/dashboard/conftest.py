"""A dashboard to test: a real repository with swarm.toml, a registry seeded with a task in every state
(titles, reasons, evidence, prompts and agent output carrying HTML and planted secrets), the dashboard's
routes on a real uvicorn on 127.0.0.1, and Debian's chromium driven by Playwright.

The seeded tasks are records only (no agent runs for them), so nothing here ticks: the pages are read
as they are. The actions build their world as `swarm retry` does and really launch the scripted agent
in a private tmux server."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.agent_run import LOG
from monitor.layout import Layout
from monitor.redact import clear_secret_values
from monitor.statedir import ensure_state_dir
from orchestrator.config import CONFIG_NAME, load
from orchestrator.dashboard.actions import Actions
from orchestrator.dashboard.auth import Guard
from orchestrator.dashboard.routes import Dashboard, dashboard_routes
from orchestrator.serve.app import build_app
from orchestrator.serve.webhooks import DELIVERIES_FILE, DeliveryLog, WebhookHandler
from orchestrator.wiring import build_world, register_secrets
from registry.models import Attempt, Failure, FailureKind, PullRequest, RegistryState, Spend, Status, Task
from registry.store import Registry
from tests.serve.conftest import Uvicorn
from tests.worlds import write_config

CHROMIUM = "/usr/bin/chromium"
EVIL_TITLE = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>alert('xss')</script>"
# Fake secrets, planted in the environment (the configured *_env names) and in agent output.
PLANTED = {
    "GITHUB_TOKEN": "ghp_" + "F4ke" * 9,
    "SLACK_BOT_TOKEN": "xoxb-1111111111-fakefakefakefake",
    "ANTHROPIC_API_KEY": "sk-ant-api03-" + "fAkE" * 10,
    "SENTRY_AUTH_TOKEN": "sntrys_" + "fake" * 10,
    "SWARM_SERVE_TOKEN": "serve-token-" + "s3cr3t" * 4,
}
NOW = datetime.now(UTC).replace(microsecond=0)


def _task(task_id: str, title: str, status: Status, worktrees: Path | None = None, **extra: Any) -> Task:
    created = NOW - timedelta(hours=3)
    worktree = (worktrees or Path("/nonexistent")) / task_id  # never created: only a retry makes it
    return Task(id=task_id, title=title, prompt="p", agent="scripted", status=status, base_branch="main",
                branch=f"swarm/{task_id}", worktree=str(worktree), created_at=created,
                updated_at=NOW - timedelta(minutes=5), **extra)


def _attempt(layout: Layout, task_id: str, number: int, *, ended: bool, failure: Failure | None = None,
             tokens: int = 1200, cost: float = 0.05) -> Attempt:
    run = layout.run_dir(task_id, number)
    run.mkdir(parents=True, exist_ok=True)
    (run / "prompt.md").write_text(f"# Prompt of attempt {number}\n\n{SCRIPT}\nscenario: commit\n")
    return Attempt(number=number, session=f"swarm-{task_id}", prompt_path=str(run / "prompt.md"),
                   started_at=NOW - timedelta(minutes=40 - number), ended_at=NOW - timedelta(minutes=20)
                   if ended else None, exit_code=(1 if failure else 0) if ended else None, failure=failure,
                   tokens=tokens, cost_usd=cost)


def agent_output(extra: str = "") -> str:
    """A Claude Code stream: the agent says HTML and a token; a tool prints a Slack token."""
    events = [
        {"type": "system", "subtype": "init", "tools": ["Bash"]},
        {"type": "assistant", "message": {"content": [
            {"type": "text", "text": f"I will fix it {SCRIPT} using {PLANTED['GITHUB_TOKEN']}"}]}},
        {"type": "assistant", "message": {"content": [
            {"type": "tool_use", "name": "Bash", "input": {"command": "env | grep TOKEN"}}]}},
        {"type": "user", "message": {"content": [
            {"type": "tool_result", "content": f"SLACK={PLANTED['SLACK_BOT_TOKEN']}"}]}},
    ]
    return "\n".join(json.dumps(e) for e in events) + "\n" + extra


def seed(repo: Path) -> dict[str, str]:
    """A task in every state; returns their ids by status."""
    layout = Layout.for_repo(repo)
    evidence = f"CI log tail:\n{SCRIPT}\nFAILED test_login - token {PLANTED['ANTHROPIC_API_KEY']}"
    fail = Failure(kind=FailureKind.ci_failed, summary=f"CI failed: {SCRIPT}", evidence=evidence,
                   at=NOW - timedelta(minutes=20))
    ids = {"queued": "queued-task-0001", "running": "evil-title-0002", "checking": "checking-task-0003",
           "ready": "ready-task-0004", "failed": "failed-task-0005", "merged": "merged-task-0006",
           "cancelled": "cancelled-task-0007"}
    pr = PullRequest(number=42, url="https://github.com/acme/shop/pull/42")
    tasks = [
        _task(ids["queued"], "Queued work", Status.queued, reason="waiting for checking-task-0003 to merge",
              after=(ids["checking"],)),
        _task(ids["running"], EVIL_TITLE, Status.running, reason=f"agent running {SCRIPT}",
              attempts=(_attempt(layout, ids["running"], 1, ended=False),)),
        _task(ids["checking"], "Checking work", Status.checking, reason="waiting for CI", pr=pr,
              checks={"commits": "ok", "pr": "ok", "ci": "pending", "reviews": "0/1"},
              attempts=(_attempt(layout, ids["checking"], 1, ended=True),)),
        _task(ids["ready"], "Ready work", Status.ready, reason="ready for your review",
              pr=PullRequest(number=43, url="https://github.com/acme/shop/pull/43"),
              checks={"commits": "ok", "pr": "ok", "ci": "success", "reviews": "1/1"},
              attempts=(_attempt(layout, ids["ready"], 1, ended=True),), llm_tokens=900, llm_cost_usd=0.02,
              llm_spend=(Spend(at=NOW, tokens=300, cost_usd=0.01, what="review"),
                         Spend(at=NOW, tokens=200, cost_usd=0.004, what="retry prompt"))),
        _task(ids["failed"], "Failed work", Status.failed, reason=f"attempts exhausted: {SCRIPT}",
              attempts=(_attempt(layout, ids["failed"], 1, ended=True, failure=fail),
                        _attempt(layout, ids["failed"], 2, ended=True, failure=fail)),
              ended_at=NOW - timedelta(minutes=10)),
        _task(ids["merged"], "Merged work", Status.merged, reason="merged", ended_at=NOW - timedelta(hours=1)),
        _task(ids["cancelled"], "Cancelled work", Status.cancelled, reason="cancelled by the human",
              ended_at=NOW - timedelta(hours=1)),
    ]
    for task_id in (ids["running"], ids["failed"]):
        (layout.run_dir(task_id, 1) / LOG).write_text(agent_output())

    tasks = [t.model_copy(update={"worktree": str(layout.worktree(t.id))}) for t in tasks]

    def put(state: RegistryState) -> RegistryState:
        for task in tasks:
            state = state.with_task(task)
        return state

    Registry(layout.state_dir).update(put)
    return ids


@dataclass
class Site:
    url: str
    repo: Path
    ids: dict[str, str]
    registry: Registry
    layout: Layout
    token: str
    dashboard: Dashboard

    def client(self, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10, **kwargs)


def serve_dashboard(repo: Path, *, token: bool, monkeypatch: pytest.MonkeyPatch) -> Generator[Site, None, None]:
    for name, value in PLANTED.items():
        monkeypatch.setenv(name, value)
    if not token:
        monkeypatch.delenv("SWARM_SERVE_TOKEN")
    settings = load(repo / CONFIG_NAME)
    register_secrets(settings)
    layout = Layout.for_repo(repo)
    ensure_state_dir(layout.state_dir)
    guard = Guard(token=lambda: os.environ.get(settings.serve.token_env, "").strip(), loopback=True)
    actions = Actions(repo, settings, wake=lambda _ids: None, world=lambda: build_world(repo, settings))
    dashboard = Dashboard(layout, settings, guard, actions, interval=600.0)
    handler = WebhookHandler(secret=lambda: b"", deliveries=DeliveryLog(layout.state_dir / DELIVERIES_FILE),
                             read_state=dashboard.registry.read, wake=lambda _ids: None,
                             on_accepted=lambda *_: None)
    app = build_app(handler, lambda: {}, dashboard_routes(dashboard))
    try:
        with Uvicorn(app) as server:
            yield Site(url=f"http://127.0.0.1:{server.port}", repo=repo, ids=seed(repo), registry=dashboard.registry,
                       layout=layout, token=PLANTED["SWARM_SERVE_TOKEN"] if token else "", dashboard=dashboard)
    finally:
        clear_secret_values()


@pytest.fixture
def site(git_repo: Path, tmux_socket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The dashboard without a token (loopback)."""
    write_config(git_repo, tmux_socket)
    yield from serve_dashboard(git_repo, token=False, monkeypatch=monkeypatch)


@pytest.fixture
def token_site(git_repo: Path, tmux_socket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    """The dashboard with ``SWARM_SERVE_TOKEN`` set."""
    write_config(git_repo, tmux_socket)
    yield from serve_dashboard(git_repo, token=True, monkeypatch=monkeypatch)


def browser_available() -> bool:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return False
    return os.access(CHROMIUM, os.X_OK) or shutil.which("chromium") is not None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's chromium under Playwright. Outside CI a missing one skips; with CI=true it fails."""
    if not browser_available():
        if not os.environ.get("CI"):
            pytest.skip("chromium or playwright missing (scripts/ensure-system-deps and the dev extras install them)")
        pytest.fail("chromium or playwright missing: scripts/ensure-system-deps and `pip install -e .[dev]` "
                    "must install them in CI")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()


__all__ = ["CHROMIUM", "EVIL_TITLE", "PLANTED", "SCRIPT", "Site", "agent_output", "seed"]
