"""Append-only history (``events.jsonl``) of every transition and action: the audit trail and, later,
the reward signals the orchestrator learns from."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any


class EventLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, at: datetime, task: str, event: str, **data: Any) -> None:
        record = {"at": at.isoformat(), "task": task, "event": event, **data}
        line = (json.dumps(record, default=str, ensure_ascii=False) + "\n").encode()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND with one write per line: concurrent writers interleave whole lines.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":
                # The last line was cut by a crash: end it, or this record would be glued onto it and lost.
                line = b"\n" + line
            os.write(fd, line)
        finally:
            os.close(fd)

    def read(self, task: str | None = None) -> Iterator[dict[str, Any]]:
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            return
        with handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:  # JSONDecodeError, or UnicodeDecodeError when cut inside a character
                    continue  # a line cut by a crash; the rest of the history still counts
                if not isinstance(record, dict):
                    continue
                if task is None or record.get("task") == task:
                    yield record
