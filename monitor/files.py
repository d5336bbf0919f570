"""Small, careful readers for the files agents and jobs leave behind (logs that grow, JSON written
atomically by another process)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from monitor.redact import redact
from monitor.world.proc import tail


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read_tail(path: Path, lines: int = 60, max_bytes: int = 32768, chars: int = 6000) -> str:
    """The last ``lines`` lines of a possibly huge log, reading at most ``max_bytes`` from its end."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read()
    except FileNotFoundError:
        return ""
    text = data.decode("utf-8", errors="replace")
    if size > max_bytes and "\n" in text:
        text = text.split("\n", 1)[1]  # the first line is cut: it could hold half a token
    return tail(redact(text), lines=lines, chars=chars)


def read_json(path: Path) -> dict[str, Any] | None:
    """The object in ``path``, or None when it is absent or not (yet) a JSON object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None
