"""The wrapper that runs inside each tmux session (``swarm agent-run RUN_DIR``).

It feeds the prompt to the agent's argv (on stdin or as a file path; never through a shell), tees the
output to ``output.log`` and the pane, forwards termination signals, and on exit atomically writes
``result.json`` with the exit code, the times and what the profile's parser read. The same wrapper runs
check jobs (local CI, local reviewers) with no prompt and a time limit.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SPEC = "run.json"
LOG = "output.log"
RESULT = "result.json"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, default=str)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


class Wrapper:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.spec: dict[str, Any] = json.loads((run_dir / SPEC).read_text(encoding="utf-8"))
        self.child: subprocess.Popen[bytes] | None = None
        self.killed_by = ""
        self.started = datetime.now(UTC)

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        for name in self.spec.get("unset_env", []):
            env.pop(name, None)
        env.update(self.spec.get("env", {}))
        return env

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.killed_by = signal.Signals(signum).name
        child = self.child
        if child is not None and child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)

            def hard_kill() -> None:
                time.sleep(10)
                if child.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)

            threading.Thread(target=hard_kill, daemon=True).start()

    def _run(self, argv: list[str], stdin_path: str | None, log: Any, timeout: float | None) -> tuple[int, str]:
        """Run one command, teeing its output; returns (exit code, error text)."""
        stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.child = subprocess.Popen(
                argv, cwd=self.spec["cwd"], env=self._env(), stdin=stdin,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            return 127, f"cannot start {argv[0]!r}: {exc.strerror or exc}"
        finally:
            if stdin_path and not isinstance(stdin, int):
                stdin.close()
        child = self.child
        timer: threading.Timer | None = None
        timed_out = threading.Event()
        if timeout:
            def expire() -> None:
                timed_out.set()
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
            timer = threading.Timer(timeout, expire)
            timer.start()
        assert child.stdout is not None
        out_fd = child.stdout.fileno()
        while chunk := _read_retrying(out_fd):
            log.write(chunk)
            log.flush()
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
        code = child.wait()
        if timer is not None:
            timer.cancel()
        if timed_out.is_set():
            return 124, f"timed out after {timeout:g}s"
        return code, ""

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        log_path = self.run_dir / LOG
        phase, code, error = "agent", 0, ""
        with log_path.open("ab") as log:
            setup = self.spec.get("setup")
            if setup and not Path(setup["marker"]).exists():
                phase = "setup"
                log.write(f"$ {setup['command']}\n".encode())
                code, error = self._run(shlex.split(setup["command"]), None, log, setup.get("timeout"))
                if code == 0 and not self.killed_by:
                    Path(setup["marker"]).touch()
                    phase = "agent"
            if phase == "agent" and not self.killed_by:
                prompt = self.spec.get("prompt_file") if self.spec.get("prompt_mode") == "stdin" else None
                code, error = self._run(list(self.spec["argv"]), prompt, log, self.spec.get("timeout"))
                if code == 127 and error:
                    phase = "launch"
        if phase == "setup" and code != 0 and not error:
            error = f"setup command `{setup['command'] if setup else ''}` exited {code}"
        self._write_result(phase, code, error, log_path)
        return code

    def _write_result(self, phase: str, code: int, error: str, log_path: Path) -> None:
        from monitor.agents import parse_output

        text = log_path.read_text(encoding="utf-8", errors="replace")
        report = parse_output(self.spec.get("parser", "plain"), text, code) if phase == "agent" else None
        result: dict[str, Any] = {
            "phase": phase,
            "exit_code": code,
            "killed_by": self.killed_by,
            "started_at": self.started.isoformat(),
            "ended_at": datetime.now(UTC).isoformat(),
            "error": error or (report.error if report else ""),
            "report": report.model_dump() if report else None,
        }
        write_json_atomic(self.run_dir / RESULT, result)


def _read_retrying(fd: int) -> bytes:
    """os.read that survives the EINTR a forwarded signal may cause."""
    while True:
        try:
            return os.read(fd, 65536)
        except InterruptedError:
            continue


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: swarm agent-run RUN_DIR", file=sys.stderr)
        return 2
    return Wrapper(Path(args[0])).run()


if __name__ == "__main__":
    sys.exit(main())
