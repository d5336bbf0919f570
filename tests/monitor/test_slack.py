"""Slack notifications with the real slack-sdk clients against a fake Slack on 127.0.0.1.

Deliveries go through the registry's outbox and ``flush_outbox`` / ``run_tick`` as in production: threads
per task with their status line kept current, the ready broadcast, webhook messages, Block Kit layouts, and
reliability cases 8 (a crash around the send), 11 (429 + Retry-After) and 16 (planted tokens never reach
Slack or the logs).
"""

from __future__ import annotations

import json
import logging
import secrets
import string
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.messages import (
    discovered_message,
    needs_help_message,
    ready_message,
    stuck_message,
    waiting_message,
)
from monitor.redact import MASK
from monitor.retry import TemplateRetryPrompter
from monitor.tick import World, flush_outbox, run_tick
from monitor.world.notify import ConsoleNotifier, NotifyError
from monitor.world.slack import (
    HEADER_CHARS,
    MAX_BLOCKS,
    SECTION_CHARS,
    SlackNotifier,
    SlackWebhookNotifier,
    blocks_for,
)
from monitor.world.slack_check import check
from orchestrator import tasks as task_ops
from orchestrator.config import Settings
from orchestrator.notifiers import LazyNotifier, notifier_from, slack_check
from registry.models import Attempt, Failure, FailureKind, OutboxMessage, PullRequest, RegistryState, Status, Task
from tests.fakes.slack_server import WEBHOOK, FakeSlack
from tests.monitor.test_tick import CI_CHECK, spawn, status_of, tick_until
from tests.test_secrets import profile_toml
from tests.worlds import Clock, make_world

CHANNEL = "#swarm"
CHANNEL_ID = "C0SWARM01"
PROMPT = "# Reset\n\nAdd a password reset page to the web app.\nUse the existing mailer.\n\nDetails follow."


def _letters(n: int) -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(n))


def fake_tokens() -> dict[str, str]:
    """Fresh token-shaped values, built at run time so the source holds none."""
    return {
        "github": "ghp_" + _letters(36),
        "slack-bot": f"xoxb-{secrets.randbelow(10**12):012d}-{secrets.randbelow(10**13):013d}-{_letters(24)}",
        "anthropic": "sk-ant-api03-" + _letters(48),
        "sentry": "sntrys_" + _letters(64),
    }


def found_in(text: str, values: dict[str, str]) -> list[str]:
    return [name for name, value in values.items() if value in text]


# -- fixtures and helpers ---------------------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def parts(git_repo: Path, tmux_socket: str, slack: FakeSlack) -> tuple[World, Clock]:
    world, clock, _ = make_world(git_repo, tmux_socket)
    world.notifier = bot(world, slack)
    return world, clock


def bot(world: World, slack: FakeSlack, token: str | None = None, channel: str = CHANNEL) -> SlackNotifier:
    """A notifier as a new process would build it (the thread state comes from .swarm/slack.json)."""
    return SlackNotifier(token or slack.token, channel, world.layout.state_dir / "slack.json",
                         api_url=slack.api_url, timeout=2)


def make_task(task_id: str = "t1", **fields: Any) -> Task:
    now = Clock().now
    task = Task(id=task_id, title="Password reset page", prompt=PROMPT, agent="claude", status=Status.running,
                base_branch="main", branch=f"swarm/{task_id}", worktree=f"/srv/wt/{task_id}",
                created_at=now - timedelta(hours=3), updated_at=now)
    return task.model_copy(update=fields)


def attempt(number: int, failure: Failure | None = None, **fields: Any) -> Attempt:
    now = Clock().now
    return Attempt(number=number, session="swarm-t1", prompt_path=f"/runs/t1/{number}/prompt.md",
                   started_at=now - timedelta(hours=4 - number), failure=failure, tokens=1500, cost_usd=0.25,
                   **fields)


def failure(kind: FailureKind, summary: str, evidence: str = "") -> Failure:
    return Failure(kind=kind, summary=summary, evidence=evidence, at=Clock().now)


def ready_task(task_id: str = "t1") -> Task:
    return make_task(task_id, status=Status.ready, pr=PullRequest(number=12, url="https://github.com/acme/web/pull/12"),
                     attempts=(attempt(1, failure(FailureKind.ci_failed, "CI failed", "E   assert 1 == 2")),
                               attempt(2)),
                     checks={"commits": "ok", "conflict": "ok", "ci": "pass", "reviews": "1/1"})


def failed_task(task_id: str = "t1", evidence: str = "Traceback...\nValueError: bad input") -> Task:
    return make_task(task_id, status=Status.failed, reason="attempts exhausted after agent_error", attempts=(
        attempt(1, failure(FailureKind.ci_failed, "CI failed", "FAILED tests/test_x.py::test_y - AssertionError")),
        attempt(2, failure(FailureKind.stuck, "no output for 20m", "step 41\nstep 42")),
        attempt(3, failure(FailureKind.agent_error, "agent exited with code 1", evidence)),
    ))


def enqueue(world: World, *messages: OutboxMessage) -> None:
    def add(state: RegistryState) -> RegistryState:
        for message in messages:
            state = state.enqueue(message)
        return state

    world.registry.update(add)  # as act does: one update


def outbox(world: World) -> dict[str, OutboxMessage]:
    return {m.key: m for m in world.registry.read().outbox}


def texts(blocks: list[dict[str, Any]]) -> str:
    """Every text a person sees in a layout, joined."""
    parts: list[str] = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [element["text"] for element in block.get("elements", [])]
    return "\n".join(parts)


def replies(slack: FakeSlack) -> list[dict[str, Any]]:
    return [b for b in slack.calls("chat.postMessage") if b.get("thread_ts")]


def parents(slack: FakeSlack) -> list[dict[str, Any]]:
    return [b for b in slack.calls("chat.postMessage") if not b.get("thread_ts")]


def parent_ts(slack: FakeSlack, task_id: str) -> str:
    [ts] = [ts for ts, m in slack.messages.items() if m.thread_ts is None and f"[{task_id}]" in m.text]
    return ts


# -- threads, the status line and the broadcast -------------------------------------------------------------


def test_one_thread_per_task_with_its_status_line_kept_current(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    task_a, task_b = make_task("task-a", pr=PullRequest(number=12, url="https://github.com/acme/web/pull/12")), \
        make_task("task-b")
    enqueue(world, waiting_message(task_a, "approve", "a workflow run needs approval", "", clock.now),
            discovered_message(task_b, "https://sentry.io/issues/42/", "KeyError in checkout"))
    assert flush_outbox(world) == 2
    assert len(parents(slack)) == 2, "one parent message per task"
    ts_a, ts_b = parent_ts(slack, "task-a"), parent_ts(slack, "task-b")
    assert {(r["channel"], r["thread_ts"]) for r in replies(slack)} == {(CHANNEL_ID, ts_a), (CHANNEL_ID, ts_b)}
    assert "waiting for you" in slack.messages[ts_a].text

    clock.advance(hours=1)
    spent = {"status": Status.ready, "llm_tokens": 12345, "llm_cost_usd": 0.5}
    enqueue(world, ready_message(task_a.model_copy(update=spent), "f" * 40, clock.now))
    assert flush_outbox(world) == 1
    assert len(parents(slack)) == 2, "a later event reuses the task's parent"
    [update] = slack.calls("chat.update")
    assert (update["channel"], update["ts"]) == (CHANNEL_ID, ts_a), "chat.update needs the channel id, not #name"
    assert "Status: ✅ ready for review (PR #12) · spent 12,345 tokens, $0.50" in update["text"]
    assert "ready for review" in texts(update["blocks"])
    assert "ready for review" in slack.messages[ts_a].text and "waiting" not in slack.messages[ts_a].text
    ready_reply = replies(slack)[-1]
    assert ready_reply["thread_ts"] == ts_a and ready_reply["reply_broadcast"] is True, "ready is broadcast"
    assert [r.get("reply_broadcast") for r in replies(slack)[:-1]] == [None, None], "other events stay in the thread"
    assert all(m.sent_at is not None for m in outbox(world).values())


def test_the_thread_survives_a_new_process(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    task = make_task()
    enqueue(world, stuck_message(task, clock.now))
    flush_outbox(world)
    state = json.loads((world.layout.state_dir / "slack.json").read_text())
    ts = parent_ts(slack, "t1")
    assert state["threads"]["t1"] == {"configured": CHANNEL, "channel": CHANNEL_ID, "ts": ts,
                                      "at": clock.now.isoformat()}

    world.notifier = bot(world, slack)  # the next one-shot tick: a new process, a new notifier
    enqueue(world, needs_help_message(failed_task(), clock.now))
    assert flush_outbox(world) == 1
    assert len(parents(slack)) == 1
    assert [u["ts"] for u in slack.calls("chat.update")] == [ts]
    assert [r["thread_ts"] for r in replies(slack)] == [ts, ts]


def test_a_deleted_parent_starts_a_new_thread(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    enqueue(world, stuck_message(make_task(), clock.now))
    flush_outbox(world)
    slack.delete_message(parent_ts(slack, "t1"))
    enqueue(world, needs_help_message(failed_task(), clock.now))
    assert flush_outbox(world) == 1
    assert len(parents(slack)) == 2
    assert replies(slack)[-1]["thread_ts"] == parent_ts(slack, "t1")


def test_a_changed_channel_starts_new_threads_there(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    slack.channels["C0OTHER01"] = "other"
    enqueue(world, stuck_message(make_task(), clock.now))
    flush_outbox(world)
    world.notifier = bot(world, slack, channel="C0OTHER01")
    enqueue(world, needs_help_message(failed_task(), clock.now))
    flush_outbox(world)
    assert [p["channel"] for p in parents(slack)] == [CHANNEL, "C0OTHER01"]
    assert replies(slack)[-1]["channel"] == "C0OTHER01"


def test_webhook_messages_are_flat(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    world.notifier = SlackWebhookNotifier(slack.webhook_url, world.layout.state_dir / "slack.json", timeout=2)
    enqueue(world, ready_message(ready_task(), "f" * 40, clock.now), needs_help_message(failed_task("t2"), clock.now))
    assert flush_outbox(world) == 2
    posts = slack.calls(WEBHOOK)
    assert [r.method for r in slack.requests] == [WEBHOOK, WEBHOOK], "no Web API call, no token needed"
    assert all("thread_ts" not in p and "channel" not in p for p in posts)
    assert posts[0]["text"].startswith("PR ready for review — Password reset page [t1]")
    assert "✅ PR ready for review" in texts(posts[0]["blocks"])
    assert "🆘 Needs manual help" in texts(posts[1]["blocks"])


def test_a_refused_layout_falls_back_to_the_plain_text(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    enqueue(world, stuck_message(make_task(), clock.now))
    flush_outbox(world)
    enqueue(world, needs_help_message(failed_task(), clock.now))
    slack.fail_next("invalid_blocks", methods=("chat.postMessage",))
    assert flush_outbox(world) == 1
    sent = slack.calls("chat.postMessage")
    assert "blocks" not in sent[-1] and sent[-1]["text"].startswith("Needs manual help")


# -- Block Kit layouts ------------------------------------------------------------------------------------


def assert_within_limits(blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= HEADER_CHARS
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SECTION_CHARS
        for element in block.get("elements", []):
            assert len(element["text"]) <= SECTION_CHARS


def test_ready_layout(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    message = ready_message(ready_task(), "f" * 40, clock.now, reviewers={"coderabbitai": "approved"})
    enqueue(world, message)
    flush_outbox(world)
    blocks = replies(slack)[0]["blocks"]
    assert blocks == blocks_for(message), "what Slack received is the layout"
    shown = texts(blocks)
    assert blocks[0] == {"type": "header", "text": {"type": "plain_text", "text": "✅ PR ready for review",
                                                    "emoji": True}}
    assert "*<https://github.com/acme/web/pull/12|#12 Password reset page>*" in shown
    assert "Add a password reset page to the web app. Use the existing mailer." in shown, "the first paragraph"
    assert "Details follow" not in shown
    for item in ("✅ commits: ok", "✅ conflict: ok", "✅ ci: pass", "✅ reviews: 1/1"):
        assert item in shown
    assert "• coderabbitai: approved" in shown
    assert "2 attempt(s) · 3h since spawn · 3,000 tokens · $0.50" in shown
    assert "`git diff main...swarm/t1`" in shown and "swarm retry t1" in shown
    assert_within_limits(blocks)


def test_needs_help_layout(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    enqueue(world, needs_help_message(failed_task(evidence="Traceback (most recent call last):\nValueError: <bad>"),
                                      clock.now))
    flush_outbox(world)
    blocks = replies(slack)[0]["blocks"]
    shown = texts(blocks)
    assert blocks[0]["text"]["text"] == "🆘 Needs manual help"
    assert "attempts exhausted after agent_error" in shown
    history = next(b["text"]["text"] for b in blocks if b["text"]["text"].startswith("*Failure history*"))
    assert history.splitlines()[1:] == [
        "• attempt 1: `ci_failed` CI failed — _FAILED tests/test_x.py::test_y - AssertionError_",
        "• attempt 2: `stuck` no output for 20m — _step 42_",
        "• attempt 3: `agent_error` agent exited with code 1 — _ValueError: &lt;bad&gt;_",
    ]
    evidence = next(b["text"]["text"] for b in blocks if b["text"]["text"].startswith("*Last evidence*"))
    assert evidence == "*Last evidence*\n```Traceback (most recent call last):\nValueError: &lt;bad&gt;```"
    steps = next(b["text"]["text"] for b in blocks if b["text"]["text"].startswith("*Next steps*"))
    assert steps == ('*Next steps*\n```swarm logs t1\nswarm attach t1\n'
                     'swarm retry t1 --note "what to do differently"```')


def test_stuck_and_discovered_layouts() -> None:
    now = Clock().now
    task = make_task(attempts=(attempt(1, progress_at=now - timedelta(minutes=25)),))
    stuck = blocks_for(stuck_message(task, now, evidence="step 7 of 9\n```rm -rf```"))
    shown = texts(stuck)
    assert stuck[0]["text"]["text"] == "⏳ Stuck agent"
    assert "attempt 1: no output and no commit for 25m" in shown
    assert "```step 7 of 9\n'''rm -rf'''```" in shown, "a fence inside the output cannot close the code block"
    assert "swarm attach t1" in shown and "swarm cancel t1" in shown

    found = discovered_message(make_task(status=Status.queued), "https://sentry.io/issues/42/",
                               "KeyError: 'sku' in checkout <!channel>")
    assert found.kind == "discovered" and found.key == "t1:discovered" and found.created_at == task.created_at
    shown = texts(blocks_for(found))
    assert "from <https://sentry.io/issues/42/|https://sentry.io/issues/42/>" in shown
    assert "KeyError: 'sku' in checkout &lt;!channel&gt;" in shown and "<!channel>" not in shown


def test_layouts_respect_slacks_limits(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    huge = "\n".join(f"log line {i} " + "x" * 200 for i in range(2000))
    many = tuple(attempt(n, failure(FailureKind.agent_error, "boom " * 100, huge)) for n in range(1, 80))
    task = make_task(status=Status.failed, title="T" * 400, reason="r" * 5000, attempts=many,
                     checks={f"check{i}": "fail " * 50 for i in range(100)})
    for message in (needs_help_message(task, clock.now), ready_message(task, "a" * 40, clock.now),
                    stuck_message(task, clock.now, huge), discovered_message(task, "https://x.invalid/1", huge)):
        assert_within_limits(blocks_for(message))
        enqueue(world, message)
    assert flush_outbox(world) == 4


# -- reliability case 11: 429 + Retry-After -----------------------------------------------------------------


def test_a_rate_limit_keeps_the_message_queued_until_retry_after(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    first, second = stuck_message(make_task("task-a"), clock.now), stuck_message(make_task("task-b"), clock.now)
    enqueue(world, first, second)
    slack.fail_next("ratelimited", retry_after=30)
    assert flush_outbox(world) == 0
    assert len(slack.requests) == 1, "nothing more goes to Slack in this tick"
    held = outbox(world)
    assert held[first.key].not_before == clock.now + timedelta(seconds=30)
    assert held[first.key].tries == 1 and "rate limited" in held[first.key].last_error
    assert held[second.key].tries == 0 and held[second.key].not_before is None

    clock.advance(seconds=10)
    assert flush_outbox(world) == 0, "the limit holds the whole queue, in order"
    assert len(slack.requests) == 1, "no request at all before Retry-After"

    clock.advance(seconds=21)
    assert flush_outbox(world) == 2
    delivered = outbox(world)[first.key]
    assert delivered.sent_at == clock.now and delivered.not_before is None and delivered.tries == 2
    posted = [b["text"] for b in slack.calls("chat.postMessage")]
    order = [("task-a" in t, "task-b" in t) for t in posted]
    assert order.index((True, False)) < order.index((False, True))


def test_a_rate_limited_slack_does_not_hold_up_the_tick(git_repo: Path, tmux_socket: str, slack: FakeSlack) -> None:
    world, clock, _ = make_world(git_repo, tmux_socket, ci=CI_CHECK)
    world.notifier = bot(world, slack)
    slack.fail_next("ratelimited", retry_after=60)
    task = spawn(world, "scenario: commit-good")
    state = tick_until(world, status_of(task.id, Status.ready))  # many ticks: Slack limited all along
    for _ in range(3):
        run_tick(world)
    held, *queued = state.outbox
    assert held.kind == "event" and held.sent_at is None and held.not_before is not None  # "agent started"
    assert [m.kind for m in queued][-1] == "ready" and all(m.sent_at is None for m in queued)
    assert [r.fault for r in slack.requests] == ["ratelimited"], "Retry-After honoured across ticks"
    clock.advance(seconds=61)
    report = run_tick(world)
    assert report.notified == len(state.outbox)  # then all of them, in order
    assert [r["reply_broadcast"] for r in replies(slack) if r.get("reply_broadcast")] == [True]


# -- errors the human must fix, outages ------------------------------------------------------------------------


def test_invalid_auth_is_one_clear_line_and_nothing_is_lost(
    parts: tuple[World, Clock], slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    world, clock = parts
    world.notifier = bot(world, slack, token="xoxb-" + "9" * 10 + "-" + "9" * 13 + "-" + _letters(24))
    messages = [stuck_message(make_task(f"task-{n}"), clock.now) for n in range(3)]
    enqueue(world, *messages)
    with caplog.at_level(logging.INFO):
        report = run_tick(world)
    assert report.notified == 0
    assert len(slack.requests) == 1, "a rejected token is not tried once per message"
    lines = [r.getMessage() for r in caplog.records if "invalid_auth" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "the bot token in SLACK_BOT_TOKEN was rejected" in lines[0]
    assert [r.levelno for r in caplog.records if "invalid_auth" in r.getMessage()] == [logging.ERROR]
    assert all(m.sent_at is None for m in outbox(world).values())

    world.notifier = bot(world, slack)  # the human exported the right token
    assert flush_outbox(world) == 3


def test_channel_not_found_names_the_setting(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    world.notifier = bot(world, slack, channel="#nowhere")
    enqueue(world, stuck_message(make_task(), clock.now))
    flush_outbox(world)
    [held] = outbox(world).values()
    assert held.sent_at is None
    assert "channel #nowhere not found: set slack.channel in swarm.toml" in held.last_error


def test_a_5xx_is_retried_next_tick(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    enqueue(world, stuck_message(make_task("task-a"), clock.now), stuck_message(make_task("task-b"), clock.now))
    slack.fail_next("5xx", status=503)
    assert flush_outbox(world) == 0
    assert len(slack.requests) == 1, "an outage costs one request per tick, not one per message"
    held = list(outbox(world).values())
    assert held[0].not_before is None and "HTTP 503" in held[0].last_error
    assert flush_outbox(world) == 2
    assert all(m.sent_at is not None for m in outbox(world).values())


def test_a_hanging_slack_costs_one_timeout(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    world.notifier = SlackNotifier(slack.token, CHANNEL, world.layout.state_dir / "slack.json",
                                   api_url=slack.api_url, timeout=1)
    enqueue(world, *(stuck_message(make_task(f"task-{n}"), clock.now) for n in range(3)))
    slack.fail_next("hang", count=3, seconds=5)
    started = time.monotonic()
    assert flush_outbox(world) == 0
    assert time.monotonic() - started < 3, "one request's timeout, not one per message"
    assert "did not answer (timed out)" in next(iter(outbox(world).values())).last_error


def test_webhook_errors(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    world.notifier = SlackWebhookNotifier(slack.webhook_url, world.layout.state_dir / "slack.json", timeout=2)
    enqueue(world, stuck_message(make_task(), clock.now))
    slack.fail_next("ratelimited", retry_after=20)
    flush_outbox(world)
    assert outbox(world)["t1:stuck:0"].not_before == clock.now + timedelta(seconds=20)
    clock.advance(seconds=21)
    slack.fail_next("invalid_token")
    flush_outbox(world)
    held = outbox(world)["t1:stuck:0"]
    assert held.sent_at is None and "webhook in SLACK_WEBHOOK_URL was revoked" in held.last_error
    assert slack.webhook_path not in held.last_error
    assert flush_outbox(world) == 1


def test_notify_error_stays_backward_compatible() -> None:
    error = NotifyError("plain")
    assert (str(error), error.retry_after, error.permanent) == ("plain", None, False)


# -- reliability case 8: a crash around the send ------------------------------------------------------------


def crash_on_mark(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """The next registry update (flush_outbox's "sent" mark) dies as if the process were killed."""
    real = world.registry.update
    calls = {"n": 0}

    def update(fn: Any) -> RegistryState:
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt("killed between Slack's answer and the outbox update")
        return real(fn)

    monkeypatch.setattr(world.registry, "update", update)


def test_a_crash_after_slack_answered_sends_no_duplicate(
    parts: tuple[World, Clock], slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, clock = parts
    message = needs_help_message(failed_task(), clock.now)
    enqueue(world, message)
    crash_on_mark(world, monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        flush_outbox(world)
    assert outbox(world)[message.key].sent_at is None, "the outbox never heard of the delivery"
    world.notifier = bot(world, slack)  # a new process
    assert flush_outbox(world) == 0, "delivered.jsonl remembered the delivery: only the mark is written"
    assert outbox(world)[message.key].sent_at is not None
    assert len(replies(slack)) == 1


def test_a_crash_before_slack_json_was_written_sends_no_duplicate(
    parts: tuple[World, Clock], slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    world, clock = parts
    message = needs_help_message(failed_task(), clock.now)
    enqueue(world, message)
    notifier = world.notifier
    assert isinstance(notifier, SlackNotifier)

    def killed(key: str, at: str) -> None:
        raise KeyboardInterrupt("killed between Slack's answer and the write of slack.json")

    monkeypatch.setattr(notifier.state, "mark_sent", killed)
    with pytest.raises(KeyboardInterrupt):
        flush_outbox(world)
    world.notifier = bot(world, slack)
    for _ in range(3):
        flush_outbox(world)
    assert len(replies(slack)) == 1, "the in-flight reply was found in the thread, not sent again"
    assert len(parents(slack)) == 1, "the thread was saved before the reply"
    assert [r["include_all_metadata"] for r in slack.calls("conversations.replies")] == ["1"]
    assert outbox(world)[message.key].sent_at is not None


def test_a_crash_before_the_send_sends_on_the_next_tick(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    enqueue(world, needs_help_message(failed_task(), clock.now))  # the state change and its message, then death
    assert slack.requests == []
    world.notifier = bot(world, slack)
    run_tick(world)
    run_tick(world)
    assert len(replies(slack)) == 1


# -- reliability case 16: planted tokens ----------------------------------------------------------------------


def test_planted_tokens_never_reach_slack_or_the_logs(
    git_repo: Path, tmux_socket: str, caplog: pytest.LogCaptureFixture
) -> None:
    planted = fake_tokens()
    leaked = "\n".join(f"debug: {name}={value}" for name, value in planted.items())
    with FakeSlack(token=planted["slack-bot"]) as slack:
        world, clock, _ = make_world(git_repo, tmux_socket)
        world.notifier = bot(world, slack)
        webhook = SlackWebhookNotifier(slack.webhook_url, None, timeout=2)
        task = make_task(
            title=f"Rotate {planted['github']}", prompt=f"Use {planted['anthropic']} to call the API.\n\nMore.",
            reason=f"attempts exhausted ({planted['sentry']})", pr=PullRequest(number=3, url="https://x.invalid/3"),
            checks={"ci": "fail", "note": planted["github"]},
            attempts=(attempt(1, failure(FailureKind.agent_error, f"exit 1 {planted['slack-bot']}", leaked)),),
        )
        messages = [ready_message(task, "f" * 40, clock.now, reviewers={"bot": f"ok {planted['github']}"}),
                    needs_help_message(task, clock.now), stuck_message(task, clock.now, leaked),
                    waiting_message(task, "k", f"approve {planted['anthropic']}", leaked, clock.now),
                    discovered_message(task, "https://sentry.io/issues/1/", f"Sentry says: {leaked}")]
        enqueue(world, *messages)
        with caplog.at_level(logging.DEBUG):
            assert flush_outbox(world) == 5
            for message in messages:
                webhook.send(message)
            slack.fail_next("invalid_auth")
            enqueue(world, stuck_message(task.model_copy(update={"id": "t2"}), clock.now))
            flush_outbox(world)
        assert len(slack.requests) >= 16
        for request in slack.requests:
            assert found_in(json.dumps(request.body), planted) == [], request.method
            # the bot token travels in the Authorization header, and nowhere else
            assert request.method == WEBHOOK or request.headers["Authorization"] == f"Bearer {planted['slack-bot']}"
            assert found_in(request.raw.replace(f"Bearer {planted['slack-bot']}", ""), planted) == []
        assert MASK in json.dumps(slack.calls("chat.postMessage")) and MASK in json.dumps(slack.calls(WEBHOOK))
        assert "invalid_auth" in caplog.text, "the log was captured"
        assert found_in(caplog.text, planted) == []
        assert found_in((world.layout.state_dir / "slack.json").read_text(), planted) == []
        assert found_in(world.layout.events_path.read_text(), planted) == []
        # the retry prompt quotes the evidence and the title (the task's own prompt is the human's, passed as is)
        human = task.model_copy(update={"prompt": "Fix the login."})
        prompt = TemplateRetryPrompter().retry_prompt(human, task.attempts[0].failure, 2, 3)  # type: ignore[arg-type]
        assert "debug: github=" + MASK in prompt and found_in(prompt, planted) == []


def test_an_agent_that_prints_tokens_is_reported_to_slack_redacted(
    git_repo: Path, tmux_socket: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    planted = fake_tokens()
    leak_file = tmp_path / "tokens.txt"
    leak_file.write_text("".join(f"{value}\n" for value in planted.values()))
    world, _clock, _ = make_world(git_repo, tmux_socket, extra=profile_toml("envdump", leak_file))
    with FakeSlack() as slack, caplog.at_level(logging.DEBUG):
        world.notifier = bot(world, slack)
        task = task_ops.spawn(world, title="Leaky", prompt="scenario: leak", agent="envdump", kind="default",
                              after=[], base_branch="main")
        tick_until(world, status_of(task.id, Status.failed), timeout=60)
        run_tick(world)
        raw = (world.layout.run_dir(task.id, 1) / "output.log").read_text()
        assert found_in(raw, planted) == list(planted), "the agent really printed them"
        [reply] = [r for r in replies(slack) if "Needs manual help" in json.dumps(r)]
        assert MASK in json.dumps(reply) and "debug: found credential" in json.dumps(reply)
        for request in slack.requests:
            assert found_in(request.raw.replace(slack.token, ""), planted) == []
    assert found_in(caplog.text, planted) == []


# -- choosing the notifier, and swarm doctor ---------------------------------------------------------------


def test_notifier_from_the_settings(tmp_path: Path) -> None:
    settings = Settings.model_validate({"slack": {"channel": CHANNEL}})
    token = "xoxb-" + "1" * 10 + "-" + "2" * 13 + "-" + _letters(24)
    webhook_env = {"SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"}
    assert isinstance(notifier_from(settings, tmp_path, {}), ConsoleNotifier), "the default"
    assert isinstance(notifier_from(settings, tmp_path, {"SLACK_BOT_TOKEN": token}, lazy=False), SlackNotifier)
    assert isinstance(notifier_from(settings, tmp_path, webhook_env, lazy=False), SlackWebhookNotifier)
    assert isinstance(notifier_from(Settings(), tmp_path, {"SLACK_BOT_TOKEN": token}), ConsoleNotifier), \
        "a bot token without a channel"
    both = notifier_from(settings, tmp_path, {"SLACK_BOT_TOKEN": token, **webhook_env}, lazy=False)
    assert isinstance(both, SlackNotifier) and both.state.path == tmp_path / "slack.json", "the bot wins: threads"
    lazy = notifier_from(settings, tmp_path, {"SLACK_BOT_TOKEN": token})
    assert isinstance(lazy, LazyNotifier) and isinstance(lazy.notifier, SlackNotifier)
    assert lazy.notifier is lazy.notifier


def test_the_wired_notifier_delivers(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    world, clock = parts
    settings = Settings.model_validate({"slack": {"channel": CHANNEL, "api_url": slack.api_url, "timeout": "2s"}})
    world.notifier = notifier_from(settings, world.layout.state_dir, {"SLACK_BOT_TOKEN": slack.token})
    enqueue(world, needs_help_message(failed_task(), clock.now))
    assert flush_outbox(world) == 1
    assert len(replies(slack)) == 1 and (world.layout.state_dir / "slack.json").is_file()


def test_doctor_lines(slack: FakeSlack) -> None:
    ok, line = check(slack.token, CHANNEL_ID, api_url=slack.api_url, timeout=2)
    assert ok and line == "slack: bot swarm-bot in Fake Team, posting to #swarm"
    ok, line = check(slack.token, "#swarm", api_url=slack.api_url, timeout=2)
    assert ok and "a name" in line
    ok, line = check("xoxb-" + "0" * 30, CHANNEL_ID, api_url=slack.api_url, timeout=2)
    assert not ok and line.startswith("slack: invalid_auth — the bot token in SLACK_BOT_TOKEN was rejected")
    ok, line = check(slack.token, "C0MISSING1", api_url=slack.api_url, timeout=2)
    assert not ok and "channel C0MISSING1 not found: set slack.channel" in line
    slack.fail_next("5xx", status=502)
    ok, line = check(slack.token, CHANNEL_ID, api_url=slack.api_url, timeout=2)
    assert not ok and "HTTP 502" in line

    settings = Settings.model_validate({"slack": {"api_url": slack.api_url}})
    assert slack_check(settings, {}) == (True, "slack: not configured — notifications go to the console")
    ok, line = slack_check(settings, {"SLACK_WEBHOOK_URL": slack.webhook_url})
    assert ok and "incoming webhook from SLACK_WEBHOOK_URL" in line and slack.webhook_path not in line
    ok, line = slack_check(settings, {"SLACK_BOT_TOKEN": slack.token})
    assert not ok and "slack.channel is empty" in line
    with_channel = Settings.model_validate({"slack": {"api_url": slack.api_url, "channel": CHANNEL_ID}})
    ok, line = slack_check(with_channel, {})
    assert not ok and "SLACK_BOT_TOKEN is empty" in line
    assert slack_check(with_channel, {"SLACK_BOT_TOKEN": slack.token})[0]


def test_the_fake_speaks_slack_to_the_real_client(slack: FakeSlack) -> None:
    """The fake's answers are what slack-sdk expects (guards the other tests against a lenient fake)."""
    from slack_sdk.errors import SlackApiError
    from slack_sdk.web import WebClient

    client = WebClient(token=slack.token, base_url=slack.api_url, timeout=2, retry_handlers=[])
    answer = client.chat_postMessage(channel=CHANNEL, text="hi")
    assert answer["channel"] == CHANNEL_ID and answer["ts"]
    slack.fail_next("ratelimited", retry_after=7)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel=CHANNEL, text="hi")
    assert raised.value.response.status_code == 429 and raised.value.response.headers["Retry-After"] == "7"
    assert raised.value.response["error"] == "ratelimited"


# -- a real lifecycle: every event of a task in its thread ---------------------------------------------------


def test_a_task_lifecycle_is_threaded_with_a_stuck_escalation(parts: tuple[World, Clock], slack: FakeSlack) -> None:
    from monitor.tick import run_tick
    from tests.monitor.test_tick import spawn, status_of, tick_until
    from tests.waiting import wait_for_output

    world, clock = parts
    task = spawn(world, "scenario: sleep\nretry: commit-good", title="Lifecycle")
    # the agent's only output must be seen before the clock moves: printed after it, it would count as progress
    wait_for_output(world.layout, task.id, "scripted agent: attempt 1")
    run_tick(world)
    clock.advance(minutes=11)  # over stuck_after (10m): killed, respawned, the human told once
    run_tick(world)
    tick_until(world, status_of(task.id, Status.ready))
    run_tick(world)
    thread = [m for m in slack.messages.values() if m.thread_ts == parent_ts(slack, task.id)]
    lines = "\n".join(m.text for m in thread)
    assert "agent started (attempt 1)" in lines
    assert "Stuck — Lifecycle" in lines and "attempt 2 started after stuck" in lines
    assert "PR ready for review" in lines
    assert [r.get("reply_broadcast") for r in replies(slack) if "ready for review" in r.get("text", "")] == [True]
    parent = slack.messages[parent_ts(slack, task.id)]
    assert "ready for review" in parent.text  # the status line is current
    assert sum("Stuck —" in m.text for m in thread) == 1
