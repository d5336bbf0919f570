"""Delivered notifications survive a registry restore: ``swarm registry restore`` puts back the backup, which
is one write behind, so the message whose "sent" mark was that last write would go out again. The keys
delivered are kept outside the registry (``.swarm/delivered.jsonl``, fsynced before the registry is marked),
and ``flush_outbox`` skips any of them, whatever the notifier."""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from monitor.messages import needs_help_message, stuck_message
from monitor.tick import World, flush_outbox, run_tick
from monitor.world.notify import DELIVERED_FILE, ConsoleNotifier, DeliveredLog, Notifier
from monitor.world.slack import SlackNotifier, SlackWebhookNotifier
from registry.models import OutboxMessage, RegistryState
from tests.fakes.slack_server import WEBHOOK, FakeSlack
from tests.monitor.test_slack import failed_task, make_task
from tests.worlds import Clock, make_world


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def _enqueue(world: World, message: OutboxMessage) -> None:
    def add(state: RegistryState) -> RegistryState:
        return state.enqueue(message)

    world.registry.update(add)


def _notifier(kind: str, world: World, slack: FakeSlack, stream: io.StringIO) -> Notifier:
    state = world.layout.state_dir / "slack.json"
    if kind == "console":
        return ConsoleNotifier(stream)
    if kind == "slack":
        return SlackNotifier(slack.token, "C0SWARM01", state, api_url=slack.api_url, timeout=2)
    return SlackWebhookNotifier(slack.webhook_url, state, timeout=2)


def _sent(kind: str, slack: FakeSlack, stream: io.StringIO) -> int:
    if kind == "console":
        return stream.getvalue().count("[swarm:needs_help]")
    if kind == "slack":
        return sum(1 for b in slack.calls("chat.postMessage") if b.get("thread_ts"))
    return len(slack.calls(WEBHOOK))


@pytest.mark.parametrize("kind", ["console", "slack", "webhook"])
def test_a_delivered_message_is_not_sent_again_after_a_restore(
    kind: str, git_repo: Path, tmux_socket: str, slack: FakeSlack
) -> None:
    world, clock, _ = make_world(git_repo, tmux_socket)
    stream = io.StringIO()
    world.notifier = _notifier(kind, world, slack, stream)
    message = needs_help_message(failed_task(), clock.now)
    _enqueue(world, message)
    assert flush_outbox(world) == 1
    assert _sent(kind, slack, stream) == 1
    (world.layout.state_dir / "slack.json").unlink(missing_ok=True)  # only the delivered record is left to know

    world.registry.path.write_text('{"serial": 9, "tasks": {')  # damaged (a bad disk, a hand edit)
    restored = world.registry.restore_backup()  # one write behind: the "sent" mark is lost
    assert [m.sent_at for m in restored.outbox if m.key == message.key] == [None]
    world.notifier = _notifier(kind, world, slack, stream)  # a new process
    report = run_tick(world)
    assert report.notified == 0
    assert _sent(kind, slack, stream) == 1, "nothing is sent twice"
    [marked] = [m for m in world.registry.read().outbox if m.key == message.key]
    assert marked.sent_at is not None, "and the restored outbox is marked sent"

    later = stuck_message(make_task("t2"), clock.now)
    _enqueue(world, later)
    assert flush_outbox(world) == 1, "new messages still go out"


def test_the_record_is_written_before_the_registry_is_marked(git_repo: Path, tmux_socket: str,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    world, clock, recorder = make_world(git_repo, tmux_socket)
    message = stuck_message(make_task(), clock.now)
    _enqueue(world, message)
    seen: list[bool] = []
    real = world.registry.update

    def update(fn: Callable[[RegistryState], RegistryState]) -> RegistryState:
        seen.append(message.key in DeliveredLog(world.layout.state_dir / DELIVERED_FILE))
        return real(fn)

    monkeypatch.setattr(world.registry, "update", update)
    assert flush_outbox(world) == 1
    assert seen == [True]
    assert [m.key for m in recorder.sent] == [message.key]


def test_the_record_survives_a_torn_last_line_and_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / DELIVERED_FILE
    log = DeliveredLog(path, keep=10)
    log.add("a:1", Clock().now)
    with path.open("a") as handle:
        handle.write('{"key": "b:')  # SIGKILL in the middle of an append
    log = DeliveredLog(path, keep=10)
    assert "a:1" in log and "b:" not in log
    log.add("c:1", Clock().now)
    assert "c:1" in DeliveredLog(path, keep=10), "the next append starts on its own line"
    for n in range(40):
        log.add(f"k:{n}", Clock().now)
    fresh = DeliveredLog(path, keep=10)
    assert "k:39" in fresh and "k:30" in fresh and "a:1" not in fresh
    assert len(path.read_text().splitlines()) <= 20
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
