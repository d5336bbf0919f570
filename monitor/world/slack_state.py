"""``.swarm/slack.json``: the bookkeeping that makes Slack delivery exactly-once across crashes (each task's
thread, the keys Slack accepted, the posts in flight). Kept apart from the notifiers in
:mod:`monitor.world.slack`, which decide what to send and how to recover."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from monitor.agent_run import write_json_atomic
from monitor.files import read_json

log = logging.getLogger("monitor.world.slack")
KEEP_SENT = 1000  # keys remembered as delivered (the crash window is one tick, so the newest suffice)
KEEP_THREADS = 2000
KEEP_IN_FLIGHT = 200  # posts whose answer never came (each is cleared when the message is found or re-sent)


class SlackState:
    """``.swarm/slack.json``: each task's thread (channel id + parent ``ts``), the keys Slack accepted, the
    posts in flight (recorded before the request, cleared by the answer) and the id of the configured channel.

    Written atomically (fsynced) before each post and right after Slack answers: a post whose answer never
    came is looked up in Slack before it is sent again (the bot notifier); the webhook has no lookup.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        data = read_json(path) if path is not None else None
        if path is not None and data is None and path.exists():
            log.warning("slack: %s is not readable JSON; starting new threads", path.name)
        data = data or {}
        threads, sent = data.get("threads"), data.get("sent")
        in_flight, channels = data.get("in_flight"), data.get("channels")
        self.threads: dict[str, dict[str, str]] = threads if isinstance(threads, dict) else {}
        self.sent: dict[str, str] = sent if isinstance(sent, dict) else {}
        self.in_flight: dict[str, dict[str, Any]] = in_flight if isinstance(in_flight, dict) else {}
        self.channels: dict[str, str] = channels if isinstance(channels, dict) else {}

    def thread(self, task_id: str, configured: str) -> tuple[str, str] | None:
        entry = self.threads.get(task_id)
        if not isinstance(entry, dict) or entry.get("configured") != configured:
            return None  # none yet, or slack.channel changed since: start over in the new channel
        channel, ts = entry.get("channel"), entry.get("ts")
        return (channel, ts) if isinstance(channel, str) and isinstance(ts, str) else None

    def set_thread(self, task_id: str, configured: str, channel: str, ts: str, at: str) -> None:
        self.threads[task_id] = {"configured": configured, "channel": channel, "ts": ts, "at": at}
        self.in_flight.pop(parent_key(task_id), None)
        self.channels[configured] = channel
        if len(self.threads) > KEEP_THREADS:
            newest = sorted(self.threads.items(), key=lambda kv: str(kv[1].get("at", "")))[-KEEP_THREADS // 2:]
            self.threads = dict(newest)
        self.save()

    def was_sent(self, key: str) -> bool:
        return key in self.sent

    def flight(self, key: str) -> dict[str, Any] | None:
        """The record of a post of ``key`` whose answer never came, if any."""
        entry = self.in_flight.get(key)
        return entry if isinstance(entry, dict) else None

    def begin(self, name: str, **record: Any) -> dict[str, Any]:
        """Record the post ``name`` as in flight (saved before the request leaves); returns the record."""
        entry = {**record, "at": time.time()}
        self.in_flight[name] = entry
        if len(self.in_flight) > KEEP_IN_FLIGHT:
            self.in_flight = dict(list(self.in_flight.items())[-KEEP_IN_FLIGHT // 2:])
        self.save()
        return entry

    def mark_sent(self, key: str, at: str) -> None:
        self.sent[key] = at
        self.in_flight.pop(key, None)
        if len(self.sent) > KEEP_SENT:
            self.sent = dict(list(self.sent.items())[-KEEP_SENT // 2:])
        self.save()

    def save(self) -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(self.path, {"version": 1, "threads": self.threads, "sent": self.sent,
                                          "in_flight": self.in_flight, "channels": self.channels})


def parent_key(task_id: str) -> str:
    """The in-flight key of a task's first message (task ids have no ``:``, outbox keys start with one)."""
    return f"thread:{task_id}"
