"""What GitHub issue intake costs in requests, at 100 open labelled issues, counted by the fake GitHub
(real PyGithub over real HTTP on 127.0.0.1, the real intake, comment poll and mirror code).

Why: intake adds to the budget the monitor already spends (5,000 REST requests an hour per token); this
prints the figures the README quotes: the first run over 100 issues, a quiet poll, the poll every
``intake_every = 5m`` for an hour, the mirrored comments, and the same with webhooks only (no poll).

Run: ``.venv/bin/python bench/intake_bench.py [--json]``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
ISSUES = 100
AUTHORS = 5
POLLS_PER_HOUR = 12  # intake_every = "5m"


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def figures() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))  # the fake lives under tests/
    from monitor.issue_mirror import mirror_issues
    from monitor.world.tmux import Tmux
    from orchestrator.config import load
    from orchestrator.discovery.comment_commands import discover_github, on_webhook
    from orchestrator.wiring import build_world
    from tests.fakes.github_server import FakeGitHub

    out: dict[str, Any] = {"open_issues": ISSUES}
    socket = f"swarm-bench-intake-{os.getpid()}"
    with tempfile.TemporaryDirectory() as tmp, FakeGitHub() as fake:
        repo, bare = Path(tmp) / "repo", Path(tmp) / "remote.git"
        repo.mkdir()
        _git(repo, "init", "-q", "-b", "main")
        (repo / "README.md").write_text("# bench\n")
        _git(repo, "add", "README.md")
        _git(repo, "-c", "user.name=b", "-c", "user.email=b@b.invalid", "commit", "-q", "-m", "init")
        _git(Path(tmp), "clone", "-q", "--bare", str(repo), str(bare))
        _git(repo, "remote", "add", "origin", str(bare))
        fake.add_repo("acme", "shop", bare)
        for index in range(AUTHORS):
            fake.set_permission("acme/shop", f"dev{index}", "write")
        for index in range(ISSUES):
            fake.add_issue("acme/shop", f"Issue {index}", "Something is off.", user=f"dev{index % AUTHORS}")
        (repo / "swarm.toml").write_text(f"""
[project]
forge = "github"
[agents.idle]
command = ["true"]
[routing]
default = "idle"
[monitor]
tmux_socket = "{socket}"
max_parallel = 1
[github]
repo = "acme/shop"
api_url = "{fake.url}"
intake_max_new = {ISSUES}
intake_every = "5m"
""")
        os.environ["GITHUB_TOKEN"] = fake.token
        try:
            settings = load(repo / "swarm.toml")
            world = build_world(repo, settings, need_forge=True)

            def counted(run: Callable[[], object]) -> int:
                fake.reset_log()
                run()
                return len([r for r in fake.requests if r.kind != "graphql"])

            out["first_run_requests"] = counted(lambda: discover_github(world, settings, dry_run=False,
                                                                        now=world.clock()))
            out["tasks"] = len(world.registry.read().tasks)
            ticks: list[int] = []

            def mirror_all() -> None:  # as the ticks after the first run do it, a bounded number a tick
                while mirror_issues(world.registry, world.forge):
                    ticks.append(1)

            out["first_mirror_requests"] = counted(mirror_all)
            out["first_mirror_ticks"] = len(ticks)
            out["quiet_mirror_requests"] = counted(lambda: mirror_issues(world.registry, world.forge))
            quiet = counted(lambda: discover_github(world, settings, dry_run=False, now=world.clock()))
            out["quiet_poll_requests"] = quiet
            out["poll_every_5m_requests_per_hour"] = quiet * POLLS_PER_HOUR
            number = fake.add_issue("acme/shop", "One more", "Also off.", user="dev0")
            payload = fake.issue_payload("acme/shop", number, "opened")
            out["webhook_new_issue_requests"] = counted(lambda: on_webhook(world, settings, "issues", payload)) \
                + counted(lambda: mirror_issues(world.registry, world.forge))
            comment = fake.comment("acme/shop", number, "/swarm status", user="dev1")
            out["webhook_command_requests"] = counted(lambda: on_webhook(
                world, settings, "issue_comment", fake.comment_payload("acme/shop", comment)))
            out["webhooks_only_quiet_hour_requests"] = 0  # no poll: requests only when something happens
        finally:
            Tmux(socket).kill_server()
    return out


def main() -> None:
    result = figures()
    if "--json" in sys.argv:
        print(json.dumps(result))
        return
    print(f"GitHub issue intake at {result['open_issues']} open labelled issues (REST requests, fake GitHub):")
    print(f"  first run (list, permission of {AUTHORS} authors, comment poll): {result['first_run_requests']} "
          f"→ {result['tasks']} tasks")
    print(f"  first mirror (find + post one comment per issue): {result['first_mirror_requests']} over "
          f"{result['first_mirror_ticks']} ticks; "
          f"a quiet tick: {result['quiet_mirror_requests']}")
    print(f"  a quiet poll (issues list + comments since): {result['quiet_poll_requests']}; every 5 min: "
          f"{result['poll_every_5m_requests_per_hour']} an hour")
    print(f"  webhooks only: a quiet hour {result['webhooks_only_quiet_hour_requests']}; a new issue "
          f"{result['webhook_new_issue_requests']}; a /swarm command {result['webhook_command_requests']}")


if __name__ == "__main__":
    main()
