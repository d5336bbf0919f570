"""Exactly-once Slack delivery, tested the way the duplicate was found: a real ``swarm monitor run-once``
SIGKILLed while the fake Slack holds its ``chat.postMessage`` in flight, then the next run-once.

Each run gives a new task one notification (a parent message, then the reply in its thread) and kills the
tick at one of four points: Slack stored the parent / the reply but the answer never came back, or the parent
/ the reply never reached Slack. Whatever the point, the channel must end with exactly one parent and one reply.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.messages import stuck_message
from monitor.tick import World, flush_outbox
from monitor.world.slack import SlackNotifier
from registry.models import OutboxMessage, RegistryState
from registry.store import Registry
from tests.fakes.slack_server import FakeSlack
from tests.monitor.test_slack import make_task
from tests.worlds import Clock, make_world, write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
CHANNEL_ID = "C0SWARM01"
RUNS = 24
MODES = ("parent answered late", "reply answered late", "parent lost", "reply lost")


def _configure(repo: Path, socket: str, slack: FakeSlack, channel: str = CHANNEL_ID) -> dict[str, str]:
    write_config(repo, socket, extra=f'\n[slack]\nchannel = "{channel}"\napi_url = "{slack.api_url}"\n'
                                     'timeout = "30s"\n')
    return {**os.environ, "SLACK_BOT_TOKEN": slack.token}


def _run_once(repo: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([*SWARM, "monitor", "run-once"], cwd=repo, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _enqueue(repo: Path, task_id: str) -> str:
    message = stuck_message(make_task(task_id, title=f"Task {task_id}"), Clock().now)

    def add(state: RegistryState) -> RegistryState:
        return state.enqueue(message)

    Registry(repo / ".swarm").update(add)
    return message.key


def _killed_mid_post(repo: Path, env: dict[str, str], slack: FakeSlack, nth: int, lost: bool) -> None:
    """One run-once, SIGKILLed while the ``nth`` chat.postMessage is held by Slack."""
    held = slack.hold("chat.postMessage", nth=nth, lost=lost)
    proc = _run_once(repo, env)
    deadline = time.monotonic() + 60
    while not held.arrived.wait(0.05):
        assert proc.poll() is None, f"the tick ended before its post was held: {proc.communicate()}"
        assert time.monotonic() < deadline, "the tick never posted"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    slack.release()


def _finish(repo: Path, env: dict[str, str]) -> None:
    done = _run_once(repo, env)
    _out, err = done.communicate(timeout=90)
    assert done.returncode == 0, err


def _thread(slack: FakeSlack, task_id: str) -> tuple[int, int]:
    """(parent messages of the task, replies in its threads) in the channel."""
    parents = [ts for ts, m in slack.messages.items() if m.thread_ts is None and f"[{task_id}]" in m.text]
    replies = [m for m in slack.messages.values() if m.thread_ts in parents]
    return len(parents), len(replies)


def test_a_tick_killed_mid_post_sends_nothing_twice(git_repo: Path, tmux_socket: str) -> None:
    duplicates: dict[str, int] = {mode: 0 for mode in MODES}
    with FakeSlack() as slack:
        env = _configure(git_repo, tmux_socket, slack)
        for run in range(RUNS):
            task_id, mode = f"t{run}", MODES[run % len(MODES)]
            key = _enqueue(git_repo, task_id)
            _killed_mid_post(git_repo, env, slack, nth=1 if mode.startswith("parent") else 2,
                             lost=mode.endswith("lost"))
            _finish(git_repo, env)
            parents, replies = _thread(slack, task_id)
            assert parents >= 1 and replies >= 1, f"run {run} ({mode}): the message was lost"
            duplicates[mode] += parents - 1 + replies - 1
            state = Registry(git_repo / ".swarm").read()
            assert [m.sent_at is not None for m in state.outbox if m.key == key] == [True]
    print(f"\nduplicates over {RUNS} killed ticks: {json.dumps(duplicates)}")
    assert sum(duplicates.values()) == 0, duplicates


# -- in one process: a post that timed out after Slack took it, and the lookup's own failures ------------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def _timed_out_post(world: World, slack: FakeSlack, nth: int, *, lost: bool = False) -> None:
    """flush_outbox whose ``nth`` post Slack takes (unless ``lost``) but answers after the client gave up."""
    held = slack.hold("chat.postMessage", nth=nth, lost=lost)
    assert flush_outbox(world) == 0
    assert held.arrived.is_set()
    slack.release()


def _world(git_repo: Path, tmux_socket: str, slack: FakeSlack, channel: str = CHANNEL_ID) -> World:
    world, _clock, _ = make_world(git_repo, tmux_socket)
    world.notifier = SlackNotifier(slack.token, channel, world.layout.state_dir / "slack.json",
                                   api_url=slack.api_url, timeout=1)
    return world


def _add(world: World, task_id: str) -> OutboxMessage:
    message = stuck_message(make_task(task_id, title=f"Task {task_id}"), Clock().now)
    world.registry.update(lambda state: state.enqueue(message))
    return message


def test_a_timed_out_reply_that_slack_took_is_found_not_resent(git_repo: Path, tmux_socket: str,
                                                              slack: FakeSlack) -> None:
    world = _world(git_repo, tmux_socket, slack)
    message = _add(world, "t1")
    _timed_out_post(world, slack, nth=2)
    assert _thread(slack, "t1") == (1, 1), "Slack has it; the tick does not know"
    [reply] = [m for m in slack.messages.values() if m.thread_ts]
    assert reply.metadata == {"event_type": "swarm_notification", "event_payload": {"key": message.key, "task": "t1"}}
    assert flush_outbox(world) == 1
    assert _thread(slack, "t1") == (1, 1)
    [lookup] = slack.calls("conversations.replies")
    assert lookup["channel"] == CHANNEL_ID and lookup["include_all_metadata"] == "1"
    state = json.loads((world.layout.state_dir / "slack.json").read_text())
    assert state["in_flight"] == {} and message.key in state["sent"]


def test_a_timed_out_parent_is_found_in_the_channel_history(git_repo: Path, tmux_socket: str,
                                                            slack: FakeSlack) -> None:
    world = _world(git_repo, tmux_socket, slack)
    _add(world, "t1")
    _timed_out_post(world, slack, nth=1)
    assert flush_outbox(world) == 1
    assert _thread(slack, "t1") == (1, 1)
    assert len(slack.calls("conversations.history")) == 1


def test_a_post_that_never_reached_slack_is_sent(git_repo: Path, tmux_socket: str, slack: FakeSlack) -> None:
    world = _world(git_repo, tmux_socket, slack)
    _add(world, "t1")
    _timed_out_post(world, slack, nth=2, lost=True)
    assert _thread(slack, "t1") == (1, 0)
    assert flush_outbox(world) == 1
    assert _thread(slack, "t1") == (1, 1)


def test_a_rate_limited_lookup_holds_the_message_and_sends_nothing(git_repo: Path, tmux_socket: str,
                                                                   slack: FakeSlack) -> None:
    world = _world(git_repo, tmux_socket, slack)
    message = _add(world, "t1")
    _timed_out_post(world, slack, nth=2)
    slack.fail_next("ratelimited", retry_after=20, methods=("conversations.replies",))
    assert flush_outbox(world) == 0
    held = {m.key: m for m in world.registry.read().outbox}[message.key]
    assert held.not_before is not None and "conversations.replies rate limited" in held.last_error
    assert _thread(slack, "t1") == (1, 1)


def test_without_the_history_scope_it_is_sent_again_with_a_warning(
    git_repo: Path, tmux_socket: str, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    world = _world(git_repo, tmux_socket, slack)
    _add(world, "t1")
    _timed_out_post(world, slack, nth=2)
    slack.fail_next("missing_scope", methods=("conversations.replies",))
    with caplog.at_level(logging.WARNING):
        assert flush_outbox(world) == 1
    assert "add the channels:history scope" in caplog.text
    assert _thread(slack, "t1") == (1, 2), "at least once: documented"


def test_a_channel_name_is_looked_up_by_the_id_slack_answered_with(
    git_repo: Path, tmux_socket: str, slack: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    world = _world(git_repo, tmux_socket, slack, channel="#swarm")
    _add(world, "t1")
    _timed_out_post(world, slack, nth=1)  # the very first post: no id known for #swarm yet
    with caplog.at_level(logging.WARNING):
        assert flush_outbox(world) == 1
    assert "set slack.channel to the channel's id" in caplog.text
    assert _thread(slack, "t1") == (2, 1), "the one case a name costs a duplicate parent"
    _add(world, "t2")
    _timed_out_post(world, slack, nth=1)
    assert flush_outbox(world) == 1
    assert _thread(slack, "t2") == (1, 1), "the id learnt from Slack's answer"
    assert [c["channel"] for c in slack.calls("conversations.history")] == [CHANNEL_ID]


def test_the_fake_returns_metadata_only_when_asked(slack: FakeSlack) -> None:
    from slack_sdk.web import WebClient

    client = WebClient(token=slack.token, base_url=slack.api_url, timeout=2, retry_handlers=[])
    meta = {"event_type": "swarm_notification", "event_payload": {"key": "k1"}}
    parent = client.chat_postMessage(channel=CHANNEL_ID, text="parent", metadata=meta)
    client.chat_postMessage(channel=CHANNEL_ID, text="reply", thread_ts=parent["ts"], metadata=meta)
    plain = client.conversations_history(channel=CHANNEL_ID)["messages"]
    assert [m["text"] for m in plain] == ["parent"] and "metadata" not in plain[0], "replies are not history"
    assert client.conversations_history(channel=CHANNEL_ID, include_all_metadata=True)["messages"][0]["metadata"] \
        == meta
    thread = client.conversations_replies(channel=CHANNEL_ID, ts=parent["ts"], include_all_metadata=True)
    assert [(m["text"], m["metadata"]) for m in thread["messages"]] == [("parent", meta), ("reply", meta)]
    from slack_sdk.errors import SlackApiError

    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.conversations_history(channel="#swarm")  # a name is not an id
    with pytest.raises(SlackApiError, match="invalid_metadata_format"):
        client.chat_postMessage(channel=CHANNEL_ID, text="x", metadata={"event_type": "t"})


def test_doctor_says_when_sends_are_only_at_least_once(slack: FakeSlack) -> None:
    from monitor.world.slack_check import check

    assert check(slack.token, CHANNEL_ID, api_url=slack.api_url, timeout=2) == \
        (True, "slack: bot swarm-bot in Fake Team, posting to #swarm")
    slack.fail_next("missing_scope", methods=("conversations.history",))
    ok, line = check(slack.token, CHANNEL_ID, api_url=slack.api_url, timeout=2)
    assert ok and line.endswith("add the channels:history scope, groups:history for a private channel, "
                                "for exactly-once)")
