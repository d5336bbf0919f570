"""The one subprocess choke point: argv lists only (never through a shell), a timeout on everything,
the whole process group killed on timeout, and errors that show the command and its output tail."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

KILL_GRACE = 2.0  # seconds to collect a killed command's output before giving up on its pipes


def pid_alive(pid: object) -> bool:
    """Whether a process ``pid`` exists (one of another user's counts too); False for anything but a pid."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tail(text: str, lines: int = 40, chars: int = 4000) -> str:
    kept = "\n".join(text.splitlines()[-lines:])
    return kept[-chars:]


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def output(self) -> str:
        return self.stdout + (("\n" + self.stderr) if self.stderr else "")


class ProcError(Exception):
    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__(
            f"`{' '.join(result.argv)}` exited {result.returncode}: {tail(result.output, 5, 600).strip()}"
        )


class ProcTimeout(Exception):
    def __init__(self, argv: Sequence[str], timeout: float, output: str) -> None:
        self.argv = tuple(argv)
        self.output = output
        super().__init__(f"`{' '.join(argv)}` timed out after {timeout:g}s")


def run(
    argv: Sequence[str],
    *,
    timeout: float,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdin: str | None = None,
    check: bool = False,
    merge_stderr: bool = False,
) -> Result:
    if isinstance(argv, str):  # a string here would be a shell command in disguise
        raise TypeError("proc.run takes an argv list, not a string")
    started = time.monotonic()
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        try:
            out, err = proc.communicate(timeout=KILL_GRACE)
        except subprocess.TimeoutExpired:
            # Something outside the process group still holds the pipes: a wedged tmux server keeps the
            # stdout its client handed it. Waiting for EOF would hang the caller for good.
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
            proc.wait()
            out, err = "", ""
        raise ProcTimeout(argv, timeout, (out or "") + (err or "")) from None
    result = Result(tuple(argv), proc.returncode, out or "", err or "", time.monotonic() - started)
    if check and not result.ok:
        raise ProcError(result)
    return result

