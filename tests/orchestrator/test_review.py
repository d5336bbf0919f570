"""AI review lenses as check jobs on the local forge: the real anthropic client in `swarm review-run`
(started by the monitor in tmux) against a scripted Messages API; the verdict is read like any reviewer's."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.tick import run_tick
from orchestrator.plan import Usage
from orchestrator.review import parse_review
from registry.models import Status
from tests.fakes.messages_api import ScriptedMessagesServer, tool_use
from tests.monitor.test_tick import spawn, status_of, tick_until
from tests.worlds import make_world

KEY = "sk-ant-api03-reviewtest000000000000"


def verdict(kind: str, *findings: dict[str, object]) -> list[dict[str, object]]:
    return [tool_use("review", {"verdict": kind, "summary": f"the lens says {kind}", "findings": list(findings)})]


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedMessagesServer]:
    server = ScriptedMessagesServer([])
    server.start()
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)  # the tmux server (started by this process) passes them on
    monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
    yield server
    server.stop()


def test_a_lens_that_requests_changes_respawns_with_its_findings_then_approves(
    git_repo: Path, tmux_socket: str, api: ScriptedMessagesServer
) -> None:
    api._script.extend([
        verdict("request_changes", {"path": "value.txt", "line": 1, "severity": "major",
                                    "message": "the value is not validated"}),
        verdict("approve"),
    ])
    world, _, _ = make_world(git_repo, tmux_socket, ci="grep -q good value.txt",
                             extra='[done]\nreviews = 1\nreviewers = ["swarm:logic"]\n')
    task = spawn(world, "scenario: commit-good\nretry: commit")
    tick_until(world, lambda s: len(s.tasks[task.id].attempts) == 2, timeout=60)
    prompt = (world.layout.run_dir(task.id, 2) / "prompt.md").read_text()
    assert "value.txt:1: [major] the value is not validated" in prompt
    assert "swarm:logic" in prompt
    state = tick_until(world, status_of(task.id, Status.ready), timeout=60)
    done = state.tasks[task.id]
    assert done.checks["reviews"] == "1/1"
    assert done.llm_tokens > 0 and done.tokens >= done.llm_tokens  # the reviews' spend is on the task
    reviews = [r for r in api.requests if r.get("tools")]
    assert len(reviews) == 2 and "logic errors" in str(reviews[0]["system"])
    assert KEY not in prompt


def test_an_api_outage_is_no_verdict_and_the_lens_runs_again(
    git_repo: Path, tmux_socket: str, api: ScriptedMessagesServer
) -> None:
    from tests.fakes.messages_api import api_error

    api._script.extend([api_error(529, times=None)])
    world, _, _ = make_world(git_repo, tmux_socket, ci="",
                             extra='[done]\nreviews = 1\nreviewers = ["swarm:security"]\n[llm]\ntimeout = "5s"\n')
    task = spawn(world, "scenario: commit-good")
    tick_until(world, lambda s: any(e for e in [s.tasks[task.id].reason] if "waiting for reviews" in e), timeout=60)
    for _ in range(30):
        run_tick(world)
        if len([r for r in api.log if r.method == "POST"]) >= 2:
            break
        import time

        time.sleep(0.5)
    current = world.registry.read().tasks[task.id]
    assert current.status is Status.checking and len(current.attempts) == 1  # never a respawn for an outage


def test_a_malformed_or_contradictory_answer_never_approves() -> None:
    with pytest.raises(Exception, match="no verdict"):
        parse_review({"summary": "fine"}, "logic", "a" * 40, Usage())
    review = parse_review({"verdict": "approve", "summary": "ok", "findings": [
        {"path": "a.py", "line": 3, "severity": "blocker", "message": "SQL built from input"}]}, "security",
        "a" * 40, Usage())
    assert review.verdict == "request_changes"
    assert "a.py:3: [blocker] SQL built from input" in review.text()
