"""The wrapper that runs inside each tmux session (``swarm agent-run RUN_DIR``).

It feeds the prompt to the agent's argv (on stdin or as a file path; never through a shell), tees the
output to ``output.log`` and the pane, forwards termination signals, and on exit atomically writes
``result.json`` with the exit code, the times and what the profile's parser read. The same wrapper runs
check jobs (local CI, local reviewers) with no prompt and a time limit.

Secrets: the wrapper's own environment never holds swarm's secrets (the tmux server it runs under was
cleaned of them). A ``forge_token = true`` profile gets its token through a one-shot 0600 file the
runner writes just before the launch (``secret_file`` in the spec): the wrapper reads and unlinks it
first thing and puts the values into the agent's environment only, never its own, the setup command's,
argv or any file. Every file it writes is 0600 (umask 077).
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

from monitor.private import UMASK, take_secret_once
from monitor.redact import redact

SPEC = "run.json"
LOG = "output.log"
RESULT = "result.json"
SECRET_FILE = ".secret-env.json"
# Not for the agent: $TMUX would point every `tmux` command it runs at the agents' server (send-keys into
# another agent, show-environment, kill-server).
_NOT_FOR_CHILDREN = ("TMUX", "TMUX_PANE")
_CHILD_UMASK = -1  # the umask the wrapper started with, for the commands it runs (-1: unchanged)


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
        self.forward_pending = False
        self.started = datetime.now(UTC)
        self.secret_env: dict[str, str] = {}
        self.secret_missing = False
        if self.spec.get("secret_file"):
            taken = take_secret_once(run_dir / str(self.spec["secret_file"]))
            self.secret_missing = taken is None
            self.secret_env = taken or {}

    def _env(self, agent: bool = False) -> dict[str, str]:
        env = dict(os.environ)
        for name in [*self.spec.get("unset_env", []), *_NOT_FOR_CHILDREN]:
            env.pop(name, None)
        env.update(self.spec.get("env", {}))
        if agent:
            env.update(self.secret_env)
        return env

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.killed_by = signal.Signals(signum).name
        child = self.child
        if child is None:
            self.forward_pending = True  # the child is being started: _run forwards it once it exists
            return
        if child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)

            def hard_kill() -> None:
                time.sleep(10)
                if child.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(child.pid, signal.SIGKILL)

            threading.Thread(target=hard_kill, daemon=True).start()

    def _start(
        self, argv: list[str], stdin_path: str | None, agent: bool = False
    ) -> tuple[subprocess.Popen[bytes] | None, str]:
        cwd = self.spec["cwd"]
        try:
            stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
        except OSError as exc:
            return None, f"cannot read the prompt {stdin_path}: {exc.strerror or exc}"
        try:
            child = subprocess.Popen(
                argv, cwd=cwd, env=self._env(agent), stdin=stdin,
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, umask=_CHILD_UMASK,
            )
        except OSError as exc:
            if not Path(cwd).is_dir():
                return None, f"the working directory {cwd} does not exist"
            return None, f"cannot start {argv[0]!r}: {exc.strerror or exc}"
        finally:
            if not isinstance(stdin, int):
                stdin.close()
        return child, ""

    @staticmethod
    def _tee(source: Any, log: Any) -> None:
        out_fd = source.fileno()
        while chunk := _read_retrying(out_fd):
            log.write(chunk)
            log.flush()
            with contextlib.suppress(OSError, ValueError):
                sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()

    def _run(
        self, argv: list[str], stdin_path: str | None, log: Any, timeout: float | None, agent: bool = False
    ) -> tuple[int, str]:
        """Run one command, teeing its output; returns (exit code, error text)."""
        self.child = None  # not the finished setup process: a signal now must wait for the new child
        child, error = self._start(argv, stdin_path, agent)
        if child is None:
            return 127, error
        self.child = child
        if self.forward_pending:  # the signal arrived while the child was being started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGTERM)
        reader = threading.Thread(target=self._tee, args=(child.stdout, log), daemon=True)
        reader.start()
        timed_out = False
        try:
            code = child.wait(timeout=timeout or None)
        except subprocess.TimeoutExpired:
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            code = child.wait()
        reader.join(2.0)
        if reader.is_alive():
            # Something the agent started still holds its output: the agent is done, so are they.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, signal.SIGKILL)
            reader.join(5.0)
        if timed_out:
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
            if phase == "agent" and not self.killed_by and self.secret_missing:
                phase, code = "launch", 127
                error = ("the forge token was not handed over (its one-shot file was gone: the runner removes it "
                         "when this wrapper does not start in time); the next attempt gets a fresh one")
            elif phase == "agent" and not self.killed_by:
                prompt = self.spec.get("prompt_file") if self.spec.get("prompt_mode") == "stdin" else None
                code, error = self._run(list(self.spec["argv"]), prompt, log, self.spec.get("timeout"), agent=True)
                if code == 127 and error:
                    phase = "launch"
        if phase == "setup" and code != 0 and not error:
            error = f"setup command `{setup['command'] if setup else ''}` exited {code}"
        self._write_result(phase, code, error, log_path)
        self._wake()
        return code

    def _wake(self) -> None:
        """A running `swarm serve` reacts to this exit now instead of at its next reconcile."""
        from monitor.wake import state_dir_for_run, wake

        state_dir = state_dir_for_run(self.run_dir)
        task = str(self.spec.get("task", ""))
        if state_dir is not None and task:
            wake(state_dir, [task])

    def _write_result(self, phase: str, code: int, error: str, log_path: Path) -> None:
        from monitor.agent_output import parse_output

        # redacted before anything is cut or parsed, so no token survives half-cut
        text = redact(log_path.read_text(encoding="utf-8", errors="replace"))
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
    global _CHILD_UMASK
    _CHILD_UMASK = os.umask(UMASK)  # output.log and result.json: owner only; the commands keep the user's umask
    code = Wrapper(Path(args[0])).run()
    return 128 - code if code < 0 else code  # a child killed by signal N: exit 128+N, as a shell says


if __name__ == "__main__":
    sys.exit(main())
