"""The Notifier protocol and the default console notifier. Messages come from the registry's outbox,
so a crash never loses one; the notifier only has to deliver (or raise NotifyError)."""

from __future__ import annotations

import sys
from typing import IO, Protocol

from monitor.redact import redact
from registry.models import OutboxMessage


class NotifyError(Exception):
    """Delivery failed; the message stays in the outbox and is retried next tick."""


class Notifier(Protocol):
    def send(self, message: OutboxMessage) -> None: ...


class ConsoleNotifier:
    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream

    def send(self, message: OutboxMessage) -> None:
        stream = self.stream or sys.stdout
        stream.write(f"[swarm:{message.kind}] {redact(message.text)}\n")
        stream.flush()
