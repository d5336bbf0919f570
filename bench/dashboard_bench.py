"""The dashboard of `swarm serve`: render time and page weight, how soon a change shows in a browser, and
the service's memory over a day of events.

Run: ``.venv/bin/python bench/dashboard_bench.py`` (``--json`` for the figures as JSON; ``--screenshot``
also refreshes docs/dashboard.png, the README's picture).

1. Board render time (server side) at 10, 100 and 1,000 tasks: the CPU time of reading the registry after
   a write (parsed again), building the board and rendering the page (``time.thread_time``: other
   processes on a busy machine do not count); and ``GET /`` on the dashboard's routes under uvicorn, timed
   by the client on 127.0.0.1, after a change and unchanged (the cached parse). Median and max of 20
   each. Page weight: the HTML and the two static files, uncompressed. Goal: under 200 ms at 1,000 tasks.
2. Registry change → visible on an open board: Debian's chromium (Playwright) shows the board of 100
   tasks; 50 times a task's title is changed in the registry (``Registry.update``, as a tick writes) and
   the time until the new title is in the page's DOM is measured. Goal: under 1 s (median and max).
3. Memory: a real `swarm serve --interval 1s` process; 24 simulated hours, each one: 6 full ticks (the
   10-minute timer, sped up), 60 registry writes, 20 wakes on the event socket, 30 page views, 10 event
   streams opened and closed, 20 webhook posts. RSS (from /proc) after warm-up, at 12 h and at 24 h.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from monitor.heartbeat import record_tick
from monitor.layout import Layout
from monitor.statedir import ensure_state_dir
from monitor.wake import wake
from orchestrator.config import CONFIG_NAME, load
from orchestrator.dashboard import pages
from orchestrator.dashboard.actions import Actions
from orchestrator.dashboard.auth import Guard
from orchestrator.dashboard.routes import Dashboard, dashboard_routes
from orchestrator.serve import health
from orchestrator.serve.app import build_app
from orchestrator.serve.command import bind_http
from orchestrator.serve.webhooks import DELIVERIES_FILE, DeliveryLog, WebhookHandler
from registry.models import Attempt, Failure, FailureKind, PullRequest, RegistryState, Status, Task
from registry.store import Registry
from tests.worlds import REPO_ROOT, write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
CHROMIUM = "/usr/bin/chromium"
TITLES = ["Fix the login redirect loop", "Add CSV export to reports", "Rate-limit the public API",
          "Upgrade the payment SDK", "Dark mode for the settings page", "Flaky checkout test",
          "Cache the product search", "Translate onboarding emails", "Sentry: KeyError in invoices",
          "Paginate the admin user list"]
STATES = [Status.running, Status.checking, Status.ready, Status.queued, Status.failed, Status.running,
          Status.checking, Status.merged, Status.running, Status.cancelled]
REASONS = {Status.running: "agent working (last output 40s ago)", Status.checking: "waiting for CI (3 checks)",
           Status.ready: "ready: CI green, 1/1 approvals", Status.queued: "waiting for a free slot (4 of 4 running)",
           Status.failed: "3 attempts failed: ci_failed (test_invoice_totals)", Status.merged: "merged",
           Status.cancelled: "cancelled by the human"}


def _repo(tmp: Path) -> Path:
    repo = tmp / "repo"
    repo.mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@swarm.invalid",
           "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@swarm.invalid"}
    for argv in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "initial"]):
        subprocess.run(["git", *argv], cwd=repo, check=True, env=env, capture_output=True)
    write_config(repo, f"swarm-bench-{secrets.token_hex(4)}")
    return repo


def fleet(n: int, now: datetime, inactive: bool = False) -> RegistryState:
    """``n`` tasks in a realistic mix of states (only finished ones when ``inactive``: nothing for a tick)."""
    state = RegistryState()
    for i in range(n):
        status = (Status.merged if i % 2 else Status.failed) if inactive else STATES[i % len(STATES)]
        task_id = f"task-{i:04d}"
        start = now - timedelta(minutes=5 + i % 50)
        last = 3 if status is Status.failed else 1 + i % 2
        attempts = () if status is Status.queued else tuple(
            Attempt(number=k, session=f"swarm-{task_id}", prompt_path="", started_at=start + timedelta(minutes=k),
                    ended_at=None if status is Status.running and k == last else start + timedelta(minutes=k + 1),
                    failure=Failure(kind=FailureKind.ci_failed, summary="CI failed: test_invoice_totals",
                                    evidence="AssertionError: 41 != 42", at=start)
                    if k < last or status is Status.failed else None,
                    tokens=12_000 + 137 * i, cost_usd=0.04 + i % 7 / 100)
            for k in range(1, last + 1))
        pr = PullRequest(number=100 + i, url=f"https://github.com/acme/shop/pull/{100 + i}") \
            if status in (Status.checking, Status.ready, Status.merged) else None
        checks = {"commits": "ok", "pr": "ok", "ci": "success" if status is Status.ready else "pending",
                  "reviews": "1/1" if status is Status.ready else "0/1"} if pr else {}
        state = state.with_task(Task(
            id=task_id, title=f"{TITLES[i % len(TITLES)]}" + (f" ({i // len(TITLES)})" if i >= len(TITLES) else ""),
            prompt="p", agent=("claude", "codex")[i % 2], status=status, base_branch="main", branch=f"swarm/{task_id}",
            worktree=f"/srv/repo.swarm/{task_id}", created_at=start - timedelta(hours=1), updated_at=start,
            attempts=attempts, pr=pr, checks=checks, reason=REASONS[status], llm_tokens=2_400, llm_cost_usd=0.011,
            ended_at=start if status in (Status.failed, Status.merged, Status.cancelled) else None))
    return state.model_copy(update={"serial": 1})


def make_dashboard(repo: Path) -> Dashboard:
    settings = load(repo / CONFIG_NAME)
    layout = Layout.for_repo(repo)
    ensure_state_dir(layout.state_dir)
    return Dashboard(layout, settings, Guard(token=lambda: "", loopback=True),
                     Actions(repo, settings, wake=lambda _ids: None), interval=600.0)


def cpu_render_ms(dash: Dashboard, registry: Registry, i: int) -> float:
    """The server's own work for ``GET /`` after a change, as CPU time of this thread (other processes on
    a busy machine do not count): read and parse the registry, build the board, render the page."""
    _touch(registry, i)
    start = time.thread_time()
    pages.ENV.get_template("board.html").render(csrf="x", csrf_field="csrf", said="", signed=False,
                                                **dash.board_context())
    return (time.thread_time() - start) * 1000


@contextmanager
def dashboard_app(repo: Path) -> Iterator[str]:
    """The dashboard's routes on uvicorn (no ticks), as `swarm serve` mounts them."""
    import uvicorn

    dash = make_dashboard(repo)
    layout = dash.layout
    handler = WebhookHandler(secret=lambda: b"", deliveries=DeliveryLog(layout.state_dir / DELIVERIES_FILE),
                             read_state=dash.registry.read, wake=lambda _ids: None, on_accepted=lambda *_: None)
    sock = bind_http("127.0.0.1", 0)  # as `swarm serve` binds (TCP_NODELAY)
    server = uvicorn.Server(uvicorn.Config(build_app(handler, lambda: {}, dashboard_routes(dash)),
                                           log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def _touch(registry: Registry, i: int) -> None:
    def change(state: RegistryState) -> RegistryState:
        task = state.tasks["task-0000"]
        return state.with_task(task.model_copy(update={"title": f"Fix the login redirect loop, change {i}"}))

    registry.update(change)


def render_times(tmp: Path) -> list[dict[str, Any]]:
    rows = []
    for n in (10, 100, 1000):
        repo = _repo(tmp / f"render-{n}")
        registry = Registry(repo / ".swarm")
        ensure_state_dir(repo / ".swarm")
        state = fleet(n, datetime.now(UTC))
        registry.update(lambda _s, state=state: state)  # type: ignore[misc]
        with dashboard_app(repo) as url, httpx.Client(base_url=url, timeout=30) as client:
            client.get("/")
            changed, unchanged = [], []
            for i in range(20):
                _touch(registry, i)
                t0 = time.perf_counter()
                page = client.get("/")
                changed.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                client.get("/")
                unchanged.append((time.perf_counter() - t0) * 1000)
            weight = len(page.content)
            assets = sum(len(client.get(f"/static/{f}").content) for f in ("dashboard.css", "dashboard.js"))
        dash = make_dashboard(repo)
        cpu = [cpu_render_ms(dash, registry, 100 + i) for i in range(20)]
        rows.append({"tasks": n, "cpu_ms_median": round(statistics.median(cpu), 1), "cpu_ms_max": round(max(cpu), 1),
                     "after_change_ms_median": round(statistics.median(changed), 1),
                     "after_change_ms_max": round(max(changed), 1),
                     "unchanged_ms_median": round(statistics.median(unchanged), 1),
                     "html_bytes": weight, "static_bytes": assets})
    return rows


def _browser() -> Any:
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])


def change_to_visible(tmp: Path, changes: int = 50, screenshot: bool = False) -> dict[str, Any]:
    repo = _repo(tmp / "live")
    state_dir = repo / ".swarm"
    ensure_state_dir(state_dir)
    registry = Registry(state_dir)
    now = datetime.now(UTC)
    registry.update(lambda _s: fleet(100, now))
    pw, browser = _browser()
    try:
        with dashboard_app(repo) as url:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(url + "/")
            while page.evaluate("document.body.dataset.live") != "on":
                time.sleep(0.02)
            latencies = []
            for i in range(changes):
                t0 = time.perf_counter()
                _touch(registry, 1000 + i)
                page.wait_for_selector(f"text=change {1000 + i}", timeout=10_000)
                latencies.append((time.perf_counter() - t0) * 1000)
            if screenshot:
                _screenshot(browser, repo, registry)
    finally:
        browser.close()
        pw.stop()
    ordered = sorted(latencies)
    return {"changes": changes, "median_ms": round(statistics.median(ordered), 1), "max_ms": round(ordered[-1], 1),
            "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 1)}


def _screenshot(browser: Any, repo: Path, registry: Registry) -> None:
    """docs/dashboard.png: a small fleet, the service up (its heartbeat and last tick written here)."""
    now = datetime.now(UTC)
    registry.update(lambda _s: fleet(10, now).model_copy(update={"serial": 10_000}))
    state_dir = repo / ".swarm"
    health.write_serve(state_dir, host="127.0.0.1", port=8765, interval=600, started=now - timedelta(hours=5),
                       now=now)
    record_tick(state_dir, now - timedelta(minutes=3))
    health.record_webhook(state_dir, "check_run", "bench", 1, now - timedelta(minutes=1))
    reset = int((now + timedelta(minutes=38)).timestamp())
    (state_dir / "github.json").write_text(json.dumps({"rates": {
        "graphql": {"resource": "graphql", "remaining": 4_870, "limit": 5_000, "reset": reset},
        "core": {"resource": "core", "remaining": 4_962, "limit": 5_000, "reset": reset}}}))
    with dashboard_app(repo) as url:
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + "/")
        page.screenshot(path=str(REPO_ROOT / "docs" / "dashboard.png"))
        page.close()


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def memory(tmp: Path, hours: int = 24) -> dict[str, Any]:
    repo = _repo(tmp / "memory")
    state_dir = repo / ".swarm"
    ensure_state_dir(state_dir)
    registry = Registry(state_dir)
    registry.update(lambda _s: fleet(100, datetime.now(UTC), inactive=True))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "SWARM_GITHUB_WEBHOOK_SECRET": "bench-secret"}
    service = subprocess.Popen([*SWARM, "serve", "--port", "0", "--interval", "1s"], cwd=repo, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    samples: dict[str, int] = {}
    try:
        serve_file = state_dir / health.SERVE_FILE
        while not serve_file.exists():
            if service.poll() is not None:
                raise RuntimeError("swarm serve did not start")
            time.sleep(0.05)
        url = f"http://127.0.0.1:{json.loads(serve_file.read_text())['port']}"
        with httpx.Client(base_url=url, timeout=30) as client:
            for hour in range(hours + 1):
                started = time.monotonic()
                for i in range(60):
                    _touch(registry, hour * 100 + i)
                    if i % 3 == 0:
                        wake(state_dir, [f"task-{i:04d}"])
                    if i % 2 == 0:
                        client.get("/" if i % 4 else "/tasks/task-0001")
                    if i % 6 == 0:
                        with client.stream("GET", "/events") as stream:
                            next(stream.iter_bytes())
                    if i % 3 == 1:
                        client.post("/webhooks/github", content=b"{}", headers={
                            "X-GitHub-Event": "push", "X-GitHub-Delivery": secrets.token_hex(8),
                            "X-Hub-Signature-256": "sha256=" + "0" * 64})
                # six full ticks of the 10-minute timer, sped up to one a second
                time.sleep(max(0.0, 6.0 - (time.monotonic() - started)))
                if hour == 0:
                    samples["start"] = _rss_kib(service.pid)
                elif hour == hours // 2:
                    samples["middle"] = _rss_kib(service.pid)
            samples["end"] = _rss_kib(service.pid)
    finally:
        service.send_signal(signal.SIGTERM)
        service.wait(60)
    return {"simulated_hours": hours, "rss_kib": samples,
            "growth_kib": samples["end"] - samples["start"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--screenshot", action="store_true", help="refresh docs/dashboard.png")
    parser.add_argument("--hours", type=int, default=24)
    parser.add_argument("--only", choices=["render", "live", "memory"], help="measure only this")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="swarm-dash-bench-"))
    try:
        figures: dict[str, Any] = {
            "render": render_times(tmp) if args.only in (None, "render") else [],
            "live": change_to_visible(tmp, screenshot=args.screenshot) if args.only in (None, "live") else {},
            "memory": memory(tmp, args.hours) if args.only in (None, "memory") else {}}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=1))
        return
    print(f"board render (GET /, server side; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs):")
    for row in figures["render"]:
        print(f"  {row['tasks']:>5} tasks: CPU {row['cpu_ms_median']:.1f} ms after a change (max "
              f"{row['cpu_ms_max']:.1f}); over HTTP {row['after_change_ms_median']:.1f} ms after a change "
              f"(max {row['after_change_ms_max']:.1f}), {row['unchanged_ms_median']:.1f} ms unchanged; "
              f"HTML {row['html_bytes'] / 1024:.0f} KiB + static {row['static_bytes'] / 1024:.1f} KiB")
    live = figures["live"]
    if live:
        print(f"registry change -> visible in chromium ({live['changes']} changes): median {live['median_ms']:.0f} ms, "
              f"p90 {live['p90_ms']:.0f} ms, max {live['max_ms']:.0f} ms")
    mem = figures["memory"]
    if mem:
        rss = mem["rss_kib"]
        print(f"swarm serve RSS over {mem['simulated_hours']} simulated hours: start {rss['start'] / 1024:.1f} MiB, "
              f"middle {rss['middle'] / 1024:.1f} MiB, end {rss['end'] / 1024:.1f} MiB "
              f"(growth {mem['growth_kib'] / 1024:+.1f} MiB)")


if __name__ == "__main__":
    main()
