"""AI review lenses as check jobs on the local forge: the real anthropic client in `swarm review-run`
(started by the monitor in tmux) against a scripted Messages API; the verdict is read like any reviewer's."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.tick import run_tick
from orchestrator.brain.plan import Usage
from orchestrator.brain.review import parse_review
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


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_an_api_outage_is_no_verdict_and_the_lens_runs_again(
    git_repo: Path, tmux_socket: str, api: ScriptedMessagesServer
) -> None:
    from monitor.agent_run import RESULT
    from monitor.world.jobs import TEMPFAIL, job_name
    from tests.fakes.messages_api import api_error

    api._script.extend([api_error(529, times=None)])
    world, _, _ = make_world(git_repo, tmux_socket, ci="",
                             extra='[done]\nreviews = 1\nreviewers = ["swarm:security"]\n[llm]\ntimeout = "5s"\n')
    task = spawn(world, "scenario: commit-good")
    tick_until(world, lambda s: "waiting for reviews" in s.tasks[task.id].reason, timeout=60)
    head = world.git.head(task.branch)
    assert head is not None
    job_dir = world.layout.job_dir(task.id, head, job_name("swarm:security"))

    def posts() -> int:
        return len([r for r in api.log if r.method == "POST" and r.path.split("?")[0] == "/v1/messages"])

    def run_ended() -> bool:
        return (job_dir / RESULT).exists() and json.loads((job_dir / RESULT).read_text())["exit_code"] == TEMPFAIL

    for run in (1, 2):
        if run == 2:
            run_tick(world)  # the tick that sees "could not judge" starts the lens again
        wait_for(run_ended, f"review run {run} to end with {TEMPFAIL}")
        # one run = one request and the SDK's 2 retries, all answered 529; nothing else is sent
        assert posts() == 3 * run
        assert not (job_dir / "review.json").exists()  # no verdict was recorded
        current = world.registry.read().tasks[task.id]
        assert current.status is Status.checking and len(current.attempts) == 1  # never a respawn for an outage
        assert current.checks.get("reviews") == "0/1" and current.llm_tokens == 0
    run_tick(world)
    wait_for(lambda: posts() == 9, "the third run's requests")
    assert len(world.registry.read().tasks[task.id].attempts) == 1


def test_a_malformed_or_contradictory_answer_never_approves() -> None:
    with pytest.raises(Exception, match="no verdict"):
        parse_review({"summary": "fine"}, "logic", "a" * 40, Usage())
    review = parse_review({"verdict": "approve", "summary": "ok", "findings": [
        {"path": "a.py", "line": 3, "severity": "blocker", "message": "SQL built from input"}]}, "security",
        "a" * 40, Usage())
    assert review.verdict == "request_changes"
    assert "a.py:3: [blocker] SQL built from input" in review.text()
