"""The Notifier protocol and the default console notifier. Messages come from the registry's outbox,
so a crash never loses one; the notifier only has to deliver (or raise NotifyError)."""

from __future__ import annotations

import sys
from typing import IO, Protocol

from monitor.redact import redact
from registry.models import OutboxMessage


class NotifyError(Exception):
    """Delivery failed; the message stays in the outbox and is retried next tick.

    ``retry_after``: the service asked us to stop (a rate limit's ``Retry-After``, or 0 for an outage): this
    message waits that many seconds, and nothing more goes to this notifier in the current tick.
    ``permanent``: the configuration is wrong (a revoked token, a missing channel) and only the human can fix
    it; the message is kept all the same, so nothing is lost once the fix is in.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


class Notifier(Protocol):
    def send(self, message: OutboxMessage) -> None: ...


class ConsoleNotifier:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def send(self, message: OutboxMessage) -> None:
        if message.kind == "event":
            return  # thread lines are for Slack; the console already prints each tick's actions
        stream = self.stream or sys.stdout
        stream.write(f"[swarm:{message.kind}] {redact(message.text)}\n")
        stream.flush()
