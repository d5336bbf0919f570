"""Secrets that must never reach logs, prompts or notifications, and a logging filter that hides them.

Two nets: known token *shapes* (GitHub, Slack, Anthropic, Sentry, ...), and the *values* of every secret
swarm is configured with (registered at start from the ``*_env`` variables). Shapes alone missed a short
Sentry token and a webhook URL on a custom host; values alone would miss a token the agent found elsewhere.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping

_PATTERNS = [
    r"gh[pousr]_[A-Za-z0-9]{20,}",
    r"github_pat_[A-Za-z0-9_]{20,}",
    r"xox[abposr]-[A-Za-z0-9-]{10,}",
    r"sk-ant-[A-Za-z0-9_-]{10,}",
    r"sk-[A-Za-z0-9]{32,}",
    r"sntry[su]_[A-Za-z0-9+/=_-]{20,}",
    r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+",
    r"(?<=[Bb]earer )[A-Za-z0-9._~+/=-]{16,}",
    r"https?://[0-9a-f]{32}@[^\s/]+/\d+",  # Sentry DSN
]
_TOKEN = re.compile("|".join(f"(?:{p})" for p in _PATTERNS))
MASK = "[REDACTED]"
# Shorter values are not masked: "1", "true" or "main" would turn every message into noise, and a
# secret that short is guessable anyway.
MIN_SECRET_CHARS = 8

_lock = threading.Lock()
_values: frozenset[str] = frozenset()
_by_value: re.Pattern[str] | None = None


def register_secret_values(values: Iterable[str]) -> int:
    """Add secret values that redact() masks wherever they appear (process-wide); returns how many spellings count.

    Leading/trailing whitespace is ignored (an env file's stray newline), empty and very short values are
    skipped. Each value is also masked in its JSON/URL-escaped spelling where that differs."""
    global _values, _by_value
    found: set[str] = set()
    for raw in values:
        value = raw.strip()
        if len(value) < MIN_SECRET_CHARS:
            continue
        found.add(value)
        found.add(json.dumps(value)[1:-1])  # as it reads inside a JSON string
    with _lock:
        merged = _values | found
        if merged != _values:
            _values = merged
            ordered = sorted(merged, key=len, reverse=True)  # longest first: a value inside another is masked whole
            _by_value = re.compile("|".join(re.escape(v) for v in ordered))
    return len(found)


def register_secret_env(names: Iterable[str], environ: Mapping[str, str] | None = None) -> int:
    """Register the values of the named environment variables (unset ones are skipped)."""
    env = os.environ if environ is None else environ
    return register_secret_values(env.get(name, "") for name in dict.fromkeys(names))


def clear_secret_values() -> None:
    """Forget every registered value (tests)."""
    global _values, _by_value
    with _lock:
        _values, _by_value = frozenset(), None


def redact(text: str) -> str:
    by_value = _by_value
    if by_value is not None:
        text = by_value.sub(MASK, text)
    return _TOKEN.sub(MASK, text)


class RedactingFilter(logging.Filter):
    """Rewrites every record's final message with token shapes masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info:  # a traceback can quote a URL or header with a token in it
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
