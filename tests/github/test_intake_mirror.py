"""What the mirrored issue comment says for each state of a task, and that text from issues and agents is
inert in it (no markup, no mention, no token); values only, no GitHub."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from monitor.issue_mirror import MARKER, digest, inert, phase, render
from registry.models import Attempt, Failure, FailureKind, PullRequest, Status, Task

NOW = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)


def task(status: Status, *, attempts: int = 1, pr: int | None = None, failure: Failure | None = None,
         title: str = "Issue #3: totals") -> Task:
    failed = Failure(kind=FailureKind.ci_failed, summary="test failed", at=NOW)
    made = [Attempt(number=n, session="s", prompt_path="p", started_at=NOW, failure=failed if n < attempts else None)
            for n in range(1, attempts + 1)]
    if failure is not None:
        made[-1] = made[-1].model_copy(update={"failure": failure})
    return Task(id="issue-3-totals-1a2b", title=title, prompt="p", agent="a", status=status, base_branch="main",
                branch="swarm/issue-3-totals-1a2b", worktree="/w", created_at=NOW, updated_at=NOW,
                attempts=tuple(made), source_issue=3,
                pr=PullRequest(number=pr, url=f"https://github.com/acme/shop/pull/{pr}") if pr else None)


@pytest.mark.parametrize(("given", "says"), [
    (task(Status.queued, attempts=0), "queued"),
    (task(Status.running), "an agent is working on it (attempt 1)"),
    (task(Status.running, attempts=2, pr=9), "an agent is working on it (attempt 2, after ci_failed); pull request #9"),
    (task(Status.checking, pr=9), "pull request #9 opened; checks running"),
    (task(Status.checking), "the agent finished; checking its work"),
    (task(Status.ready, pr=9), "ready for review: pull request #9"),
    (task(Status.merged, pr=9), "merged (pull request #9)"),
    (task(Status.failed, failure=Failure(kind=FailureKind.died, summary="session gone <b>@all</b>", at=NOW)),
     "failed, a human is needed (died: session gone &lt;b&gt;@\u200ball&lt;/b&gt;)"),
    (task(Status.cancelled), "cancelled"),
])
def test_each_state_in_words(given: Task, says: str) -> None:
    assert phase(given).startswith(says) if says == "queued" else phase(given) == says


def test_the_reason_of_a_tick_is_not_mirrored_so_a_quiet_task_keeps_its_digest() -> None:
    one = task(Status.checking, pr=9)
    other = one.model_copy(update={"reason": "waiting for CI (2 pending)", "updated_at": NOW.replace(hour=23)})
    assert digest(render(3, [one])) == digest(render(3, [other]))
    moved = one.model_copy(update={"status": Status.ready})
    assert digest(render(3, [one])) != digest(render(3, [moved]))


def test_untrusted_text_is_inert() -> None:
    token = "ghp_" + "Q" * 36
    body = render(3, [task(Status.running, title=f"Fix [link](http://x) @here <img src=x> `code` {token}")])
    assert token not in body and "\\[REDACTED\\]" in body
    assert "<img" not in body and "@here" not in body and "\\[link\\]" in body
    assert body.endswith(MARKER.format(number=3))
    assert inert("a\nb\r\nc" + "x" * 300, 20) == "a b c" + "x" * 14 + "…"
