"""Token shapes that must never reach logs, prompts or notifications, and a logging filter that hides them."""

from __future__ import annotations

import logging
import re

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


def redact(text: str) -> str:
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
