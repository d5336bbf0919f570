"""Waiting on a condition instead of sleeping and hoping.

A test that needs an agent to have printed, a file to exist or a process to have exited polls for exactly
that, with a deadline; on a slow machine it waits longer, on a fast one it goes on at once, and when the
condition never holds it fails with a message naming what it waited for.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from monitor.agent_run import LOG, RESULT
from monitor.layout import Layout

T = TypeVar("T")


def wait_for(condition: Callable[[], T], what: str, timeout: float = 30.0, interval: float = 0.05) -> T:
    """Poll ``condition`` until it returns a truthy value (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"waited {timeout:g}s for {what}; it never happened")
        time.sleep(interval)


def output_of(layout: Layout, task_id: str, attempt: int = 1) -> str:
    """What the attempt's agent has printed so far (its ``output.log``), ``""`` before it started."""
    try:
        return (layout.run_dir(task_id, attempt) / LOG).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def wait_for_output(layout: Layout, task_id: str, text: str, attempt: int = 1, timeout: float = 30.0) -> str:
    """Until the attempt's agent has printed ``text``; returns the whole output so far."""
    return wait_for(lambda: output_of(layout, task_id, attempt) if text in output_of(layout, task_id, attempt)
                    else "", f"task {task_id} attempt {attempt} to print {text!r}", timeout)


def wait_for_result(layout: Layout, task_id: str, attempt: int = 1, timeout: float = 30.0) -> Path:
    """Until the attempt's wrapper has written ``result.json`` (the agent exited)."""
    path = layout.run_dir(task_id, attempt) / RESULT
    wait_for(path.exists, f"task {task_id} attempt {attempt} to finish", timeout)
    return path
