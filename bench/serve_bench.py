"""`swarm serve`: how fast an agent's exit becomes ``ready``, and what 1,000 bad webhook posts do.

Run: ``.venv/bin/python bench/serve_bench.py`` (``--json`` for the figures as JSON, ``--tasks N``).

1. Agent exit → ``ready``: a real `swarm serve --interval 10m` process on a temporary repository, the local
   forge with ``ci = "true"``, real tmux and git, the scripted agent committing and exiting. Tasks are
   spawned one after another with `swarm spawn`; each latency is from the wrapper's ``ended_at`` (in
   result.json) to the ``ready`` event in events.jsonl. With a ten-minute timer only the wakes (the
   wrapper's exit, the CI job's exit) can make it quick.
2. Bad input: 1,000 posts to ``/webhooks/github`` — bad signatures, bodies over the cap, signed events
   swarm does not use, and replays of a delivery already seen. Expected: no tick, no registry write, the
   service still up; the figure is the answer time (median and max) per kind.
3. On the fake GitHub (tests/fakes/github_server.py), `swarm serve --interval 10m`: from a signed
   ``check_run`` (completed, failure) webhook to the respawned attempt recorded, and from a signed
   ``pull_request_review`` (approved) webhook to ``ready``; medians over ``--rounds`` tasks. The check run
   and the review exist on the fake before the webhook is sent, as on GitHub. Beside each, the GitHub requests
   and GraphQL points the service spent from the webhook to the result (the fake's counters). The hourly
   cost of webhooks against polling at 100 and 1,000 open PRs is measured by ``bench/github_bench.py``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from orchestrator.serve.webhooks import MAX_BODY
from tests.worlds import REPO_ROOT, write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
SECRET = "bench-webhook-secret"
IDENTITY = {"GIT_AUTHOR_NAME": "swarm-bench", "GIT_AUTHOR_EMAIL": "bench@swarm.invalid",
            "GIT_COMMITTER_NAME": "swarm-bench", "GIT_COMMITTER_EMAIL": "bench@swarm.invalid"}


def _wait(condition: Any, what: str, timeout: float = 60.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit(f"serve_bench: waited {timeout:g}s for {what}")


def _events(repo: Path) -> list[dict[str, Any]]:
    path = repo / ".swarm" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def _serial(repo: Path) -> int:
    return int(json.loads((repo / ".swarm" / "registry.json").read_text())["serial"])


def _sign(body: bytes, event: str, delivery: str = "", secret: str = SECRET) -> dict[str, str]:
    return {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
            "X-Hub-Signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
            "Content-Type": "application/json"}


def exit_to_ready(repo: Path, env: dict[str, str], tasks: int) -> list[float]:
    latencies = []
    for number in range(tasks):
        out = subprocess.run([*SWARM, "spawn", "--title", f"Bench {number}", "--prompt", "scenario: commit-good"],
                             cwd=repo, env=env, capture_output=True, text=True, check=True)
        task = out.stdout.strip()
        ready = _wait(lambda task=task: next((e for e in _events(repo) if e["task"] == task
                                              and e["event"] == "ready"), None), f"task {task} to be ready")
        result = json.loads((repo / ".swarm" / "runs" / task / "1" / "result.json").read_text())
        ended = datetime.fromisoformat(result["ended_at"])
        latencies.append((datetime.fromisoformat(ready["at"]) - ended).total_seconds())
    return latencies


def bad_posts(url: str, total: int) -> dict[str, list[float]]:
    body = json.dumps({"action": "completed", "check_run": {"head_sha": "0" * 40, "pull_requests": []},
                       "repository": {"full_name": "bench/none"}}).encode()
    big = b"x" * (MAX_BODY + 1)
    seen = str(uuid.uuid4())
    times: dict[str, list[float]] = {"bad signature": [], "oversized": [], "unknown event": [], "replay": []}
    with httpx.Client(timeout=30) as client:
        first = client.post(url, content=body, headers=_sign(body, "check_run", seen))
        assert first.status_code == 202, first.status_code
        time.sleep(0.5)  # its work (no task concerned) is done after the answer
        kinds = list(times)
        for index in range(total):
            kind = kinds[index % len(kinds)]
            if kind == "bad signature":
                request = (body, _sign(body, "check_run", secret="not-the-secret"), 401)
            elif kind == "oversized":
                request = (big, _sign(b"", "push"), 413)
            elif kind == "unknown event":
                request = (body, _sign(body, "star"), 204)
            else:
                request = (body, _sign(body, "check_run", seen), 204)
            started = time.perf_counter()
            try:
                answer = client.post(url, content=request[0], headers=request[1])
                code = answer.status_code
            except httpx.TransportError:  # refused mid-upload: the server closed the connection
                code = 413 if kind == "oversized" else -1
            times[kind].append(time.perf_counter() - started)
            if code != request[2]:
                raise SystemExit(f"serve_bench: a {kind} post got {code}, expected {request[2]}")
    return times


def _task(repo: Path, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = json.loads((repo / ".swarm" / "registry.json").read_text())["tasks"][task_id]
    return task


def _deliver(url: str, event: str, data: dict[str, Any]) -> float:
    body = json.dumps(data).encode()
    started = time.monotonic()
    answer = httpx.post(url, content=body, headers=_sign(body, event))
    if answer.status_code != 202:
        raise SystemExit(f"serve_bench: the {event} webhook got {answer.status_code}")
    return started


def _quiet(fake: Any, settle: float = 0.5) -> None:
    """Wait until the service has asked the fake nothing for ``settle`` seconds (the tick before is over),
    so that a webhook's count holds only what it caused."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        before = len(fake.requests)
        time.sleep(settle)
        if len(fake.requests) == before:
            return


def github_webhooks(tmp: Path, rounds: int) -> dict[str, Any]:
    """Webhook -> respawn and webhook -> ready on the fake GitHub, each the median over ``rounds`` tasks."""
    from tests.fakes.github_server import FakeGitHub
    from tests.github.test_scenarios import REPO, TOKEN, stage_for

    hooks = REPO_ROOT / "tests" / "fixtures" / "github-webhooks"
    repo = tmp / "gh" / "repo"
    repo.mkdir(parents=True)
    env = {**os.environ, **IDENTITY, "PYTHONPATH": str(REPO_ROOT), "SWARM_GITHUB_WEBHOOK_SECRET": SECRET,
           "GITHUB_TOKEN": TOKEN}
    for args in (["init", "-q", "-b", "main"], ["commit", "-q", "--allow-empty", "-m", "initial"]):
        subprocess.run(["git", *args], cwd=repo, check=True, env=env)
    socket = f"swarm-bench-{secrets.token_hex(4)}"
    respawn, ready = [], []
    spent: dict[str, list[tuple[int, int]]] = {"respawn": [], "ready": []}
    saved = {k: os.environ.get(k) for k in IDENTITY}
    os.environ.update(IDENTITY)  # stage_for runs git in this process
    try:
        with FakeGitHub(token=TOKEN) as fake:
            stage = stage_for(repo, socket, fake, done="reviews = 1")
            log = (tmp / "gh-serve.log").open("w")
            service = subprocess.Popen([*SWARM, "serve", "--port", "0", "--interval", "10m"], cwd=repo, env=env,
                                       stdout=subprocess.DEVNULL, stderr=log, text=True)
            try:
                _wait(lambda: (repo / ".swarm" / "serve.json").exists(), "serve to start")
                url = f"http://127.0.0.1:{json.loads((repo / '.swarm' / 'serve.json').read_text())['port']}"
                url += "/webhooks/github"
                for number in range(rounds):
                    out = subprocess.run([*SWARM, "spawn", "--title", f"Hook {number}", "--prompt",
                                          "scenario: commit\nretry: commit"], cwd=repo, env=env,
                                         capture_output=True, text=True, check=True)
                    task = out.stdout.strip()
                    _wait(lambda task=task: _task(repo, task).get("pr"), f"the PR of {task}")
                    pr = _task(repo, task)["pr"]["number"]
                    head = stage.head(task)
                    fake.add_check_run(REPO, head, "test", conclusion="failure", summary="test_x failed")
                    run = json.loads((hooks / "check_run.completed.json").read_text())
                    run["check_run"]["head_sha"] = run["check_run"]["check_suite"]["head_sha"] = head
                    run["check_run"]["check_suite"]["head_branch"] = f"swarm/{task}"
                    run["check_run"]["pull_requests"][0]["number"] = pr
                    _quiet(fake)
                    fake.reset_log()
                    started = _deliver(url, "check_run", run)
                    _wait(lambda task=task: len(_task(repo, task)["attempts"]) == 2, f"{task} to respawn")
                    respawn.append(time.monotonic() - started)
                    spent["respawn"].append((len(fake.requests), sum(p for _, p in fake.graphql_points)))
                    _wait(lambda task=task, head=head: _task(repo, task)["status"] == "checking"
                          and stage.head(task) != head and fake.branch_sha(REPO, f"swarm/{task}") == stage.head(task),
                          f"{task}'s second attempt pushed")
                    new_head = stage.head(task)
                    fake.add_check_run(REPO, new_head, "test", conclusion="success")
                    fake.add_review(REPO, pr, "carol", "APPROVED", body="ship it")
                    review = json.loads((hooks / "pull_request_review.submitted.json").read_text())
                    review["pull_request"]["number"] = pr
                    review["pull_request"]["head"].update(ref=f"swarm/{task}", sha=new_head)
                    _quiet(fake)
                    fake.reset_log()
                    started = _deliver(url, "pull_request_review", review)
                    _wait(lambda task=task: _task(repo, task)["status"] == "ready", f"{task} to be ready")
                    ready.append(time.monotonic() - started)
                    spent["ready"].append((len(fake.requests), sum(p for _, p in fake.graphql_points)))
            finally:
                service.send_signal(signal.SIGTERM)
                service.communicate(timeout=60)
                log.close()
                subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return {"check_run_to_respawn_s": {"median": round(statistics.median(respawn), 3),
                                       "max": round(max(respawn), 3)},
            "approval_to_ready_s": {"median": round(statistics.median(ready), 3), "max": round(max(ready), 3)},
            "github_spent": {kind: {"requests_median": statistics.median(r for r, _ in rows),
                                    "points_median": statistics.median(p for _, p in rows)}
                             for kind, rows in spent.items()},
            "rounds": rounds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--bad", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="tasks for the GitHub webhook figures")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="swarm-serve-bench-"))
    socket = f"swarm-bench-{secrets.token_hex(4)}"
    repo = tmp / "repo"
    repo.mkdir()
    env = {**os.environ, **IDENTITY, "PYTHONPATH": str(REPO_ROOT), "SWARM_GITHUB_WEBHOOK_SECRET": SECRET}
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=repo, check=True, env=env)
    (repo / "README.md").write_text("# bench\n")
    subprocess.run(["git", "add", "README.md"], cwd=repo, check=True, env=env)
    subprocess.run(["git", "commit", "-q", "-m", "initial"], cwd=repo, check=True, env=env)
    write_config(repo, socket, ci="true")
    log = (tmp / "serve.log").open("w")  # a file, not a pipe nobody reads while 1,000 refusals are logged
    service = subprocess.Popen([*SWARM, "serve", "--port", "0", "--interval", "10m"], cwd=repo, env=env,
                               stdout=subprocess.DEVNULL, stderr=log, text=True)
    figures: dict[str, Any] = {}
    try:
        info = _wait(lambda: (repo / ".swarm" / "serve.json").exists()
                     and json.loads((repo / ".swarm" / "serve.json").read_text()), "serve to start")
        base = f"http://127.0.0.1:{info['port']}"
        _wait(lambda: httpx.get(f"{base}/healthz").json()["ticks"] >= 1, "the first tick")
        latencies = exit_to_ready(repo, env, args.tasks)
        figures["exit_to_ready_s"] = {"median": round(statistics.median(latencies), 3),
                                      "max": round(max(latencies), 3), "tasks": len(latencies)}
        time.sleep(1.0)  # the last task's notification and soft updates are written
        health = httpx.get(f"{base}/healthz").json()
        serial = _serial(repo)
        times = bad_posts(f"{base}/webhooks/github", args.bad)
        time.sleep(1.0)
        after = httpx.get(f"{base}/healthz").json()
        figures["bad_posts"] = {
            "posts": sum(len(v) for v in times.values()),
            "ticks_caused": after["ticks"] - health["ticks"],
            "registry_writes": _serial(repo) - serial,
            "service_up": service.poll() is None and after["ok"],
            **{kind: {"median_ms": round(1000 * statistics.median(v), 2), "max_ms": round(1000 * max(v), 2)}
               for kind, v in times.items()},
        }
    finally:
        service.send_signal(signal.SIGTERM)
        service.communicate(timeout=60)
        figures["clean_stop"] = service.returncode == 0
        log.close()
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, check=False)
    try:
        if args.rounds > 0:
            figures["github"] = github_webhooks(tmp, args.rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        print(json.dumps(figures, indent=1))
        return 0
    ready = figures["exit_to_ready_s"]
    print(f"agent exit -> ready (swarm serve --interval 10m, local forge, ci = \"true\"): median {ready['median']} s, "
          f"max {ready['max']} s over {ready['tasks']} tasks (goal: under 5 s)")
    bad = figures["bad_posts"]
    print(f"{bad['posts']} bad webhook posts: {bad['ticks_caused']} tick(s), {bad['registry_writes']} registry "
          f"write(s), service up: {bad['service_up']}")
    for kind in ("bad signature", "oversized", "unknown event", "replay"):
        print(f"  {kind:14} median {bad[kind]['median_ms']} ms, max {bad[kind]['max_ms']} ms")
    print(f"SIGTERM: clean stop (exit 0): {figures['clean_stop']}")
    if "github" in figures:
        gh = figures["github"]
        print(f"fake GitHub, swarm serve --interval 10m, {gh['rounds']} tasks: check_run (failure) webhook -> "
              f"respawn median {gh['check_run_to_respawn_s']['median']} s (max {gh['check_run_to_respawn_s']['max']}"
              f" s); approval webhook -> ready median {gh['approval_to_ready_s']['median']} s "
              f"(max {gh['approval_to_ready_s']['max']} s) (goal: under 5 s)")
        cost = gh["github_spent"]
        print(f"  GitHub spent per webhook (median): check_run -> respawn {cost['respawn']['requests_median']:g} "
              f"requests, {cost['respawn']['points_median']:g} points; approval -> ready "
              f"{cost['ready']['requests_median']:g} requests, {cost['ready']['points_median']:g} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
