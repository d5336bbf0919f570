"""The in-session wrapper (``python -m monitor.agent_run RUN_DIR``), run for real as a subprocess.

Each test writes a ``run.json`` by hand in ``tmp_path``; the "agent" is ``python -c CODE`` so that what it
saw (stdin, argv, environment, signals) is recorded in files the test reads back.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.agent_run import LOG, RESULT, SPEC
from monitor.decide import classify_exit
from monitor.observation import Liveness, Observation
from monitor.observe import load_result
from registry.models import Attempt, FailureKind, Task

REPO_ROOT = Path(__file__).resolve().parents[2]
CLAUDE_SUCCESS = REPO_ROOT / "tests" / "fixtures" / "claude-code" / "success-stream-json.jsonl"
PY = sys.executable
AGENT_TOUCHES = "open('agent-ran', 'a').write('ran\\n')"


# -- helpers ----------------------------------------------------------------------------------------------


def py(code: str) -> list[str]:
    """An argv running ``code`` with this interpreter (no shell anywhere)."""
    return [PY, "-c", code]


def write_spec(
    run_dir: Path,
    argv: Sequence[str],
    *,
    cwd: Path,
    prompt: bytes | None = None,
    prompt_mode: str = "stdin",
    parser: str = "plain",
    env: dict[str, str] | None = None,
    unset_env: Sequence[str] = (),
    timeout: float | None = None,
    setup: dict[str, Any] | None = None,
) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    cwd.mkdir(parents=True, exist_ok=True)
    prompt_path = run_dir / "prompt.md"
    if prompt is not None:
        prompt_path.write_bytes(prompt)
    spec: dict[str, Any] = {
        "task": "t1",
        "attempt": 1,
        "argv": list(argv),
        "prompt_mode": prompt_mode,
        "prompt_file": str(prompt_path),
        "parser": parser,
        "env": env or {},
        "unset_env": list(unset_env),
        "cwd": str(cwd),
        "setup": setup,
    }
    if timeout is not None:
        spec["timeout"] = timeout
    (run_dir / SPEC).write_text(json.dumps(spec), encoding="utf-8")
    return prompt_path


def wrapper_argv(run_dir: Path) -> list[str]:
    return [PY, "-m", "monitor.agent_run", str(run_dir)]


def run_wrapper(
    run_dir: Path, *, env: dict[str, str] | None = None, stdin: bytes = b"", timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        wrapper_argv(run_dir), input=stdin, capture_output=True, timeout=timeout, env=env, cwd=REPO_ROOT,
        check=False,
    )


def result_of(run_dir: Path) -> dict[str, Any]:
    data = json.loads((run_dir / RESULT).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def start_wrapper(run_dir: Path) -> subprocess.Popen[str]:
    """The wrapper as tmux runs it, in the background, for tests that signal or time it."""
    return subprocess.Popen(wrapper_argv(run_dir), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, cwd=REPO_ROOT, text=True)


def wait_for(path: Path, timeout: float = 20.0) -> None:
    """Until ``path`` has content: a file is created empty before it is written, and a signal sent
    in between would interrupt the write."""
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.02)


def process_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie has already been killed)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def kill_leftover(pid_file: Path) -> None:
    """Kill a process a test's agent started, if it is still there (only when the code under test failed)."""
    if pid_file.exists():
        pid = int(pid_file.read_text())
        if process_alive(pid):
            os.kill(pid, signal.SIGKILL)


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_alive(pid):
            return True
        time.sleep(0.05)
    return not process_alive(pid)


# -- the prompt -------------------------------------------------------------------------------------------

RECORD_STDIN = "import sys; open('got-stdin.bin', 'wb').write(sys.stdin.buffer.read())"
SHELLY = (
    "scenario: x\n$(touch pwned-subst) `touch pwned-backtick` ; touch pwned-semicolon && echo $HOME | cat\n"
    "'single' \"double\" \\back\\slash * ? [a-z] ~ > redirect < in 2>&1 & | ${IFS} \x00 nul, tab\t, "
    "émoji 🐝, CRLF\r\n-- --help -rf /\n"
).encode()


def big_prompt() -> bytes:
    line = b"The quick brown fox $(rm -rf /) jumps over `id` the lazy dog; 'quoted' \"text\" \xe2\x9c\x93\n"
    data = (line * (300_000 // len(line) + 1))[:300_000]
    return data + b"END-OF-PROMPT"


@pytest.mark.parametrize("prompt", [SHELLY, big_prompt()], ids=["shell-metacharacters", "300KB"])
def test_stdin_prompt_reaches_the_agent_byte_exact(tmp_path: Path, prompt: bytes) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    write_spec(run_dir, py(RECORD_STDIN), cwd=work, prompt=prompt)

    proc = run_wrapper(run_dir, stdin=b"NOT THE PROMPT: the wrapper's own stdin")

    assert proc.returncode == 0, proc.stderr
    assert (work / "got-stdin.bin").read_bytes() == prompt
    assert not list(work.glob("pwned*")), "the prompt went through a shell"
    assert result_of(run_dir)["exit_code"] == 0


def test_file_prompt_mode_passes_the_path_and_no_stdin(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    record = (
        "import json, os, sys; data = sys.stdin.buffer.read(); "
        "json.dump({'argv': sys.argv[1:], 'stdin': data.decode('latin-1'), "
        "'stdin_is_devnull': os.path.samestat(os.fstat(0), os.stat(os.devnull)), "
        "'prompt': open(sys.argv[2]).read()}, open('seen.json', 'w'))"
    )
    prompt_path = run_dir / "prompt.md"
    write_spec(run_dir, [*py(record), "--message-file", str(prompt_path)], cwd=work,
               prompt=b"file prompt $(touch pwned)\n", prompt_mode="file")

    proc = run_wrapper(run_dir, stdin=b"the wrapper's own stdin must not leak to the agent")

    assert proc.returncode == 0, proc.stderr
    seen = json.loads((work / "seen.json").read_text())
    assert seen["argv"] == ["--message-file", str(prompt_path)]
    assert seen["prompt"] == "file prompt $(touch pwned)\n"
    assert seen["stdin"] == ""
    assert seen["stdin_is_devnull"] is True
    assert not (work / "pwned").exists()


# -- output and result.json ---------------------------------------------------------------------------------


def test_output_is_teed_to_the_log_and_to_stdout(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    code = (
        "import sys, time\n"
        "for i in range(50):\n"
        "    print(f'out line {i}', flush=True)\n"
        "    if i % 10 == 0: print(f'err line {i}', file=sys.stderr, flush=True)\n"
        "sys.stdout.buffer.write(bytes(range(256)) + b'\\nno newline at end'); sys.stdout.flush()\n"
    )
    write_spec(run_dir, py(code), cwd=work, prompt=b"go\n")

    proc = run_wrapper(run_dir)

    assert proc.returncode == 0, proc.stderr
    log = (run_dir / LOG).read_bytes()
    assert b"out line 0\n" in log and b"out line 49\n" in log
    assert b"err line 40\n" in log, "stderr is captured too"
    assert log.endswith(bytes(range(256)) + b"\nno newline at end"), "binary output is kept byte-exact"
    assert proc.stdout == log, "the pane sees exactly what the log holds"


def test_result_json_has_the_exit_code_times_and_a_plain_report(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    code = "import time, sys; time.sleep(0.3); print('working'); print('fatal: disk on fire'); sys.exit(7)"
    write_spec(run_dir, py(code), cwd=work, prompt=b"go\n")
    before = datetime.now().astimezone()

    proc = run_wrapper(run_dir)

    after = datetime.now().astimezone()
    assert proc.returncode == 7, "the wrapper exits with the agent's code"
    result = result_of(run_dir)
    assert result["phase"] == "agent"
    assert result["exit_code"] == 7
    assert result["killed_by"] == ""
    started = datetime.fromisoformat(result["started_at"])
    ended = datetime.fromisoformat(result["ended_at"])
    assert started.tzinfo is not None and ended.tzinfo is not None
    assert before <= started <= ended <= after
    assert (ended - started).total_seconds() >= 0.3
    assert result["report"]["parser"] == "plain"
    assert result["report"]["is_error"] is True
    assert result["error"] == "fatal: disk on fire"


def test_claude_parser_report_arrives_in_result_json(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    code = f"import sys; sys.stdout.write(open({str(CLAUDE_SUCCESS)!r}).read())"
    write_spec(run_dir, py(code), cwd=work, prompt=b"add greet()\n", parser="claude")

    proc = run_wrapper(run_dir)

    assert proc.returncode == 0, proc.stderr
    report = result_of(run_dir)["report"]
    assert report["parser"] == "claude"
    assert report["tool_calls"] == 2  # Write, then Bash (git commit)
    assert report["cost_usd"] == pytest.approx(0.015)
    assert report["num_turns"] == 3
    assert report["subtype"] == "success"
    assert report["has_result"] is True and report["is_error"] is False
    assert report["final_text"] == "Added greet() in greet.py and committed it."
    loaded = load_result(run_dir / RESULT)  # what the monitor reads back
    assert loaded is not None and loaded.tool_calls == 2 and loaded.cost_usd == pytest.approx(0.015)


# -- launch and setup ---------------------------------------------------------------------------------------


def test_missing_agent_binary_is_a_launch_failure_naming_it(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    write_spec(run_dir, ["swarm-no-such-agent-cli", "-p"], cwd=work, prompt=b"go\n")

    proc = run_wrapper(run_dir)

    assert proc.returncode == 127
    result = result_of(run_dir)
    assert result["phase"] == "launch"
    assert result["exit_code"] == 127
    assert "swarm-no-such-agent-cli" in result["error"]
    assert "No such file" in result["error"]
    assert result["report"] is None


def test_missing_worktree_is_a_launch_failure_naming_the_directory(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    write_spec(run_dir, py(AGENT_TOUCHES), cwd=work, prompt=b"go\n")
    work.rmdir()

    proc = run_wrapper(run_dir)

    assert proc.returncode == 127
    result = result_of(run_dir)
    assert result["phase"] == "launch"
    assert str(work) in result["error"]


def setup_spec(tmp_path: Path, code: str, timeout: float = 60) -> dict[str, Any]:
    return {"command": shlex.join(py(code)), "timeout": timeout, "marker": str(tmp_path / "task" / "setup.ok")}


def test_failing_setup_stops_before_the_agent(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    (tmp_path / "task").mkdir()
    setup = setup_spec(tmp_path, "import sys; print('npm ERR! missing script: ci'); sys.exit(3)")
    write_spec(run_dir, py(AGENT_TOUCHES), cwd=work, prompt=b"go\n", setup=setup)

    proc = run_wrapper(run_dir)

    assert proc.returncode == 3
    result = result_of(run_dir)
    assert result["phase"] == "setup"
    assert result["exit_code"] == 3
    assert "exited 3" in result["error"] and setup["command"] in result["error"]
    assert result["report"] is None
    assert not (work / "agent-ran").exists(), "the agent must not run after a failed setup"
    assert not Path(setup["marker"]).exists()
    log = (run_dir / LOG).read_text()
    assert log.startswith(f"$ {setup['command']}\n") and "npm ERR! missing script: ci" in log


def test_successful_setup_runs_once_per_worktree(tmp_path: Path) -> None:
    work = tmp_path / "work"
    (tmp_path / "task").mkdir()
    setup = setup_spec(tmp_path, "open('setup-runs', 'a').write('setup\\n'); print('installed deps')")
    for number in (1, 2):
        run_dir = tmp_path / "runs" / str(number)
        write_spec(run_dir, py(AGENT_TOUCHES), cwd=work, prompt=b"go\n", setup=setup)
        proc = run_wrapper(run_dir)
        assert proc.returncode == 0, proc.stderr
        assert result_of(run_dir)["phase"] == "agent"
        assert Path(setup["marker"]).exists()

    assert (work / "setup-runs").read_text() == "setup\n", "setup ran again although its marker exists"
    assert (work / "agent-ran").read_text() == "ran\n" * 2
    assert "installed deps" in (tmp_path / "runs" / "1" / LOG).read_text()
    assert "installed deps" not in (tmp_path / "runs" / "2" / LOG).read_text()


# -- timeout and signals ------------------------------------------------------------------------------------

SPAWNS_GRANDCHILD = (
    "import subprocess, sys, time, os\n"
    "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(300)'])\n"
    "open('grandchild.pid', 'w').write(str(g.pid))\n"
    "open('child.pid', 'w').write(str(os.getpid()))\n"
    "print('started', flush=True)\n"
    "time.sleep(300)\n"
)


def test_timeout_kills_the_agent_and_its_children(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    write_spec(run_dir, py(SPAWNS_GRANDCHILD), cwd=work, prompt=b"go\n", timeout=1.5)
    began = time.monotonic()
    try:
        proc = run_wrapper(run_dir, timeout=30)
        elapsed = time.monotonic() - began
        grandchild = int((work / "grandchild.pid").read_text())
        child = int((work / "child.pid").read_text())
        gone = wait_gone(child), wait_gone(grandchild)
    finally:
        kill_leftover(work / "grandchild.pid")
        kill_leftover(work / "child.pid")

    assert elapsed < 20, f"the wrapper took {elapsed:.1f}s to enforce a 1.5s timeout"
    assert proc.returncode == 124
    result = result_of(run_dir)
    assert result["exit_code"] == 124
    assert "timed out" in result["error"]
    assert result["killed_by"] == ""
    assert gone == (True, True), f"agent {child} / grandchild {grandchild} survived the timeout: {gone}"


def test_the_result_is_written_when_the_agent_exits_even_if_a_background_process_remains(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    code = (
        "import subprocess, sys\n"
        "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "open('grandchild.pid', 'w').write(str(g.pid))\n"
        "print('started a dev server in the background; all done', flush=True)\n"
    )
    write_spec(run_dir, py(code), cwd=work, prompt=b"go\n")
    wrapper = start_wrapper(run_dir)
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            wrapper.wait(timeout=5)
        finished = (run_dir / RESULT).exists()
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()
        kill_leftover(work / "grandchild.pid")

    assert finished, "the agent exited at once, but 5 s later there is still no result.json"
    assert result_of(run_dir)["exit_code"] == 0


def test_setup_timeout_is_enforced(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    (tmp_path / "task").mkdir()
    setup = setup_spec(tmp_path, "import time; time.sleep(300)", timeout=1)
    write_spec(run_dir, py(AGENT_TOUCHES), cwd=work, prompt=b"go\n", setup=setup)

    proc = run_wrapper(run_dir, timeout=60)

    assert proc.returncode == 124
    result = result_of(run_dir)
    assert result["phase"] == "setup" and result["exit_code"] == 124 and "timed out" in result["error"]
    assert not (work / "agent-ran").exists()
    assert not Path(setup["marker"]).exists()


RECORDS_SIGNALS = (
    "import os, signal, sys, time\n"
    "def on(signum, frame):\n"
    "    open('got-signal', 'a').write(signal.Signals(signum).name + '\\n')\n"
    "    sys.exit(143)\n"
    "for s in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):\n"
    "    signal.signal(s, on)\n"
    "open('ready', 'w').write(str(os.getpid()))\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)


@pytest.mark.parametrize("sent", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_signal_to_the_wrapper_is_forwarded_as_sigterm(tmp_path: Path, sent: signal.Signals) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    write_spec(run_dir, py(RECORDS_SIGNALS), cwd=work, prompt=b"go\n")
    wrapper = start_wrapper(run_dir)
    try:
        wait_for(work / "ready")
        wrapper.send_signal(sent)
        code = wrapper.wait(timeout=20)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()

    assert (work / "got-signal").read_text() == "SIGTERM\n"
    assert code == 143
    result = result_of(run_dir)
    assert result["killed_by"] == sent.name
    assert result["exit_code"] == 143
    assert result["phase"] == "agent"
    assert wait_gone(int((work / "ready").read_text()))


# Runs the real wrapper, with one change: the signal arrives while Popen is starting the agent (after the
# fork, before Popen returns), which is when `tmux kill-session` right after a launch can land. Measured on
# the unpatched wrapper: SIGHUP sent 20-120 ms after start was lost this way in about 1 run in 75.
SIGNAL_DURING_POPEN = """
import os, signal, subprocess, sys
import monitor.agent_run as agent_run

class SignalledWhileStarting(subprocess.Popen):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)

subprocess.Popen = SignalledWhileStarting
sys.exit(agent_run.main([sys.argv[1]]))
"""


def test_a_signal_arriving_while_the_agent_starts_still_stops_it(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    write_spec(run_dir, py(RECORDS_SIGNALS.replace("time.sleep(300)", "time.sleep(60)")), cwd=work, prompt=b"go\n")
    wrapper = subprocess.Popen([PY, "-c", SIGNAL_DURING_POPEN, str(run_dir)], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO_ROOT)
    try:
        with contextlib.suppress(subprocess.TimeoutExpired):
            wrapper.wait(timeout=5)
        stopped = wrapper.poll() is not None
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()
        kill_leftover(work / "ready")

    assert stopped, "the wrapper still waits for an agent it was told to stop"
    result = result_of(run_dir)
    assert result["killed_by"] == "SIGTERM"
    assert result["exit_code"] != 0


def test_an_agent_ignoring_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "open('ready', 'w').write(str(os.getpid()))\n"
        "time.sleep(300)\n"
    )
    write_spec(run_dir, py(code), cwd=work, prompt=b"go\n")
    wrapper = start_wrapper(run_dir)
    try:
        wait_for(work / "ready")
        wrapper.send_signal(signal.SIGTERM)
        returncode = wrapper.wait(timeout=40)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()

    result = result_of(run_dir)
    assert result["killed_by"] == "SIGTERM"
    assert result["exit_code"] == -signal.SIGKILL
    assert returncode != 0
    assert wait_gone(int((work / "ready").read_text()))


def test_a_signal_during_setup_stops_before_the_agent(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    (tmp_path / "task").mkdir()
    setup = setup_spec(tmp_path, "import time; open('setup-started', 'w').write('started'); time.sleep(300)")
    write_spec(run_dir, py(AGENT_TOUCHES), cwd=work, prompt=b"go\n", setup=setup)
    wrapper = start_wrapper(run_dir)
    try:
        wait_for(work / "setup-started")
        wrapper.send_signal(signal.SIGTERM)
        wrapper.wait(timeout=20)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()

    result = result_of(run_dir)
    assert result["phase"] == "setup"
    assert result["killed_by"] == "SIGTERM"
    assert result["exit_code"] != 0
    assert not (work / "agent-ran").exists()
    assert not Path(setup["marker"]).exists(), "an interrupted setup must run again next time"


def test_a_setup_interrupted_by_a_signal_is_a_death_not_a_setup_failure(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    (tmp_path / "task").mkdir()
    setup = setup_spec(tmp_path, "import time; open('setup-started', 'w').write('started'); time.sleep(300)")
    write_spec(run_dir, py(AGENT_TOUCHES), cwd=work, prompt=b"go\n", setup=setup)
    wrapper = start_wrapper(run_dir)
    try:
        wait_for(work / "setup-started")
        wrapper.send_signal(signal.SIGHUP)  # what tmux sends when its server or the session is killed
        wrapper.wait(timeout=20)
    finally:
        if wrapper.poll() is None:
            wrapper.kill()
            wrapper.wait()
    result = load_result(run_dir / RESULT)
    assert result is not None and result.killed_by == "SIGHUP"
    now = result.ended_at
    attempt = Attempt(number=1, session="swarm-t1", prompt_path=str(run_dir / "prompt.md"), started_at=now,
                      launched_at=now, progress_at=now)
    task = Task(id="t1", title="T", prompt="go", agent="scripted", kind="default", base_branch="main",
                branch="swarm/t1", worktree=str(work), created_at=now, updated_at=now, attempts=(attempt,))
    obs = Observation(liveness=Liveness.exited, worktree_exists=True, result=result)

    assert classify_exit(task, attempt, result, obs) is FailureKind.died


# -- environment --------------------------------------------------------------------------------------------


def test_unset_env_names_are_removed_and_env_entries_added(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    dump = "import json, os; json.dump(dict(os.environ), open('env.json', 'w'))"
    write_spec(
        run_dir, py(dump), cwd=work, prompt=b"go\n",
        env={"IS_SANDBOX": "1", "AGENT_NOTE": "spaces and $(shell) stay literal", "OVERRIDDEN": "from-profile"},
        unset_env=["SWARM_FAKE_SECRET", "GITHUB_TOKEN", "NOT_SET_ANYWAY"],
    )
    env = {
        **os.environ,
        "SWARM_FAKE_SECRET": "s3cret-value",
        "GITHUB_TOKEN": "ghp_" + "a" * 36,
        "INHERITED_PLAIN": "kept",
        "OVERRIDDEN": "from-parent",
    }

    proc = run_wrapper(run_dir, env=env)

    assert proc.returncode == 0, proc.stderr
    seen = json.loads((work / "env.json").read_text())
    assert "SWARM_FAKE_SECRET" not in seen
    assert "GITHUB_TOKEN" not in seen
    assert "s3cret-value" not in json.dumps(seen)
    assert seen["IS_SANDBOX"] == "1"
    assert seen["AGENT_NOTE"] == "spaces and $(shell) stay literal"
    assert seen["OVERRIDDEN"] == "from-profile"
    assert seen["INHERITED_PLAIN"] == "kept", "everything else is inherited"


# -- result.json is written atomically ----------------------------------------------------------------------


def test_result_json_is_written_atomically_with_no_temp_file_left(tmp_path: Path) -> None:
    run_dir, work = tmp_path / "run", tmp_path / "work"
    big_final = "import sys; print('x' * 500_000); sys.exit(1)"
    write_spec(run_dir, py(big_final), cwd=work, prompt=b"go\n")
    (run_dir / RESULT).write_text("stale, not JSON")  # a leftover from an earlier run is replaced whole

    proc = run_wrapper(run_dir)

    assert proc.returncode == 1
    result = result_of(run_dir)  # parses
    assert result["exit_code"] == 1
    assert sorted(p.name for p in run_dir.iterdir()) == sorted(["prompt.md", SPEC, LOG, RESULT])
    assert not list(run_dir.glob(f".{RESULT}.tmp-*"))


def test_result_json_is_written_even_when_the_prompt_file_is_missing(tmp_path: Path) -> None:
    """The monitor learns why an attempt ended only from result.json: the wrapper must always write it."""
    run_dir, work = tmp_path / "run", tmp_path / "work"
    write_spec(run_dir, py(RECORD_STDIN), cwd=work, prompt=None)  # prompt.md was never written

    proc = run_wrapper(run_dir)

    assert proc.returncode != 0
    assert (run_dir / RESULT).exists(), f"no result.json; the wrapper crashed: {proc.stderr.decode()[-500:]}"
    result = result_of(run_dir)
    assert result["phase"] == "launch"
    assert "prompt.md" in result["error"]
    assert not (work / "got-stdin.bin").exists()
