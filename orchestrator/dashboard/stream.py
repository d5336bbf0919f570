"""Server-sent events: the page learns that something changed, then fetches the new HTML fragment itself.

Nothing is pushed but an event name, so no task text ever travels in the stream. Changes are seen by
watching the files every writer goes through (``registry.json`` is replaced atomically on every update,
whoever writes it: a tick, `swarm spawn`, a retry from this page; the last tick, the last webhook and
GitHub's budget are files too): a ``stat`` per file every ``POLL`` seconds per open page, no reading.
A task page also watches its running attempt's ``output.log`` for the live tail.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from starlette.types import Receive

POLL = 0.1  # seconds between stats: a change reaches an open page well within a second
KEEPALIVE = 15.0  # a comment line: proxies keep the connection open
REFRESH = 30.0  # "time in state" moves even when nothing else does
MAX_STREAMS = 32  # open pages at once; uvicorn's limit is 64 connections and actions need some

Signature = tuple[tuple[int, int, int], ...]


def signature(paths: list[Path]) -> Signature:
    out = []
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            out.append((0, 0, 0))
            continue
        out.append((st.st_ino, st.st_size, st.st_mtime_ns))
    return tuple(out)


class Streams:
    """Counts the open streams, so a page left open in many tabs cannot take every connection."""

    def __init__(self, limit: int = MAX_STREAMS, stopping: Callable[[], bool] = lambda: False) -> None:
        self.limit = limit
        self.open = 0
        self.stopping = stopping  # the service is stopping: end every stream, so SIGTERM does not wait on them

    async def events(self, watch: Callable[[], dict[str, list[Path]]], receive: Receive,
                     poll: float = POLL) -> AsyncIterator[str]:
        """``event: NAME`` each time a watched group of files changes. ``watch`` is asked again on each
        poll (a task's running attempt changes between retries). The stream ends when the client goes
        (``receive`` says ``http.disconnect``) or the service stops."""
        self.open += 1
        gone = asyncio.Event()

        async def listen() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        listener = asyncio.create_task(listen())
        try:
            yield "retry: 1000\n\n"
            last = {name: signature(paths) for name, paths in watch().items()}
            loop = asyncio.get_running_loop()
            quiet_since = refreshed = loop.time()
            while True:
                await asyncio.sleep(poll)
                if self.stopping() or gone.is_set():
                    return
                now = loop.time()
                sent = False
                for name, paths in watch().items():
                    current = signature(paths)
                    if current != last.get(name):
                        last[name] = current
                        yield f"event: {name}\ndata: {name}\n\n"
                        sent = True
                if not sent and now - refreshed >= REFRESH:
                    refreshed = now
                    yield "event: refresh\ndata: refresh\n\n"
                    sent = True
                if sent:
                    quiet_since = now
                elif now - quiet_since >= KEEPALIVE:
                    quiet_since = now
                    yield ": keepalive\n\n"
        finally:
            self.open -= 1
            listener.cancel()
