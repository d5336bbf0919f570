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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--bad", type=int, default=1000)
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
