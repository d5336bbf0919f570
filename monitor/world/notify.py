"""The Notifier protocol, the default console notifier, and the record of what was delivered. Messages come
from the registry's outbox, so a crash never loses one; the notifier only has to deliver (or raise
NotifyError).

:class:`DeliveredLog` exists because the registry can go back one write: ``swarm registry restore`` puts back
``registry.json.bak``, the state before the last update, and that update may be the one that marked a
message sent. The keys delivered are therefore also kept outside the registry, in an append-only file
fsynced before the registry is marked, and ``flush_outbox`` never sends a key it lists."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from datetime import datetime
from pathlib import Path
from typing import IO, Protocol

from monitor.redact import redact
from registry.models import OutboxMessage

DELIVERED_FILE = "delivered.jsonl"
KEEP_DELIVERED = 5000  # keys kept when the file is compacted (a restore goes back one write: the newest suffice)


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


class DeliveredLog:
    """``.swarm/delivered.jsonl``: one ``{"key", "at"}`` line per delivered message, appended and fsynced.

    A line torn by a crash mid-append is skipped (its message was not marked sent yet, so the lookup
    of its notifier, or a re-send, decides). Past ``2 * keep`` lines the file is rewritten atomically
    with the newest ``keep``."""

    def __init__(self, path: Path, keep: int = KEEP_DELIVERED) -> None:
        self.path = path
        self.keep = keep
        self._keys: dict[str, str] | None = None
        self._lines = 0

    def _load(self) -> dict[str, str]:
        if self._keys is None:
            self._keys = {}
            try:
                raw = self.path.read_text(encoding="utf-8", errors="replace")
            except FileNotFoundError:
                raw = ""
            lines = raw.splitlines()
            self._lines = len(lines)
            for line in lines:
                with contextlib.suppress(ValueError):
                    entry = json.loads(line)
                    if isinstance(entry, dict) and isinstance(entry.get("key"), str):
                        self._keys[entry["key"]] = str(entry.get("at", ""))
        return self._keys

    def __contains__(self, key: object) -> bool:
        return key in self._load()

    def add(self, key: str, at: datetime) -> None:
        """Record ``key`` as delivered; on disk (fsynced) when this returns."""
        keys = self._load()
        keys[key] = at.isoformat()
        line = json.dumps({"key": key, "at": keys[key]}) + "\n"
        if self._lines + 1 > 2 * self.keep:
            self._compact(keys)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                line = "\n" + line  # the last append was torn: start on a line of our own
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)
        self._lines += 1

    def _compact(self, keys: dict[str, str]) -> None:
        newest = list(keys.items())[-self.keep:]
        self._keys = dict(newest)
        data = "".join(json.dumps({"key": k, "at": at}) + "\n" for k, at in newest).encode()
        tmp = self.path.with_name(f".{self.path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        _fsync_dir(self.path.parent)
        self._lines = len(newest)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
