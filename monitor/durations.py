"""Durations as users write them in swarm.toml and on the command line: ``90s``, ``20m``, ``2h``, ``1d``."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhd])")


def parse_duration(text: str | int | float) -> float:
    """Seconds in ``text``; a bare number is seconds. Raises ValueError with a usable message."""
    if isinstance(text, bool):
        raise ValueError(f"bad duration {text!r} (use e.g. 90s, 20m, 2h)")
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError(f"bad duration {text!r} (must not be negative)")
        return float(text)
    cleaned = text.strip().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", cleaned):
        return float(cleaned)
    pos, total = 0, 0.0
    for match in _PART.finditer(cleaned):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if not cleaned or pos != len(cleaned):
        raise ValueError(f"bad duration {text!r} (use e.g. 90s, 20m, 2h, 1h30m)")
    return total


def format_duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s" if seconds % 60 else f"{seconds // 60}m"
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if rest else f"{hours}h"
