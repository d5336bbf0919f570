"""A stand-in agent for the secrets tests: reads the prompt on stdin and acts out ``scenario: NAME``.

* ``env`` (default): prints one line per environment variable it received, ``env-dump: NAME sha256=HASH``
  (the first 16 hex digits of the value's SHA-256: a marker the test can compare with what it planted,
  never the value itself), then commits a file and exits 0.
* ``leak``: a careless agent. Prints every line of the file named by ``SWARM_TEST_LEAK_FILE`` literally
  (the test puts planted tokens there), then exits 1.
* ``leak-cut``: prints the first token of that file, then exactly enough filler that the last
  ``CUT_KEEP + 1500`` characters of its output start inside the token (where the monitor cuts the
  agent's last message when it quotes it as evidence), then exits 1.
* ``sleep``: prints one line and sleeps, so a test can look at the live processes.
* ``probe``: an agent hunting for secrets. Prints ``probe: SOURCE NAME sha256=HASH`` for every variable of
  its own environment (``self``), its parent's (``/proc/$PPID/environ``: the wrapper) and the global
  environment of the agents' tmux server (``tmux -L $SWARM_TEST_SOCKET show-environment -g``, and through
  ``$TMUX`` when set), plus ``probe: TMUX set|unset``; exits 0.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

EVIDENCE_CHARS = 1500  # monitor/decide_running.py quotes the last 1500 characters of the agent's last message
CUT_KEEP = 26  # characters of the token left after the cut


def marker(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def leaked_lines() -> list[str]:
    return Path(os.environ["SWARM_TEST_LEAK_FILE"]).read_text().splitlines()


def _pairs(lines: list[str]) -> dict[str, str]:
    return {name: value for name, sep, value in (line.partition("=") for line in lines) if sep}


def probe() -> None:
    sources = {"self": dict(os.environ)}
    try:
        raw = Path(f"/proc/{os.getppid()}/environ").read_bytes()
        sources["parent"] = _pairs([item.decode(errors="replace") for item in raw.split(b"\0") if item])
    except OSError as exc:
        print(f"probe: parent unreadable {exc}", flush=True)
    commands = {"tmux-global": ["tmux", "-L", os.environ.get("SWARM_TEST_SOCKET", "none"), "show-environment", "-g"]}
    if os.environ.get("TMUX"):
        commands["tmux-inherited"] = ["tmux", "show-environment", "-g"]
    for source, argv in commands.items():
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
        sources[source] = _pairs(done.stdout.splitlines())
        print(f"probe: {source} exit {done.returncode}", flush=True)
    for source, env in sources.items():
        for name in sorted(env):
            print(f"probe: {source} {name} sha256={marker(env[name])}", flush=True)
    print(f"probe: TMUX {'set' if os.environ.get('TMUX') else 'unset'}", flush=True)


def main() -> int:
    prompt = sys.stdin.read()
    found = re.search(r"^scenario: (\S+)", prompt, re.M)
    scenario = found.group(1) if found else "env"
    print(f"env-dump agent: scenario {scenario}", flush=True)
    if scenario == "env":
        for name in sorted(os.environ):
            print(f"env-dump: {name} sha256={marker(os.environ[name])}", flush=True)
        Path("env-dump.txt").write_text("names only\n")
        subprocess.run(["git", "add", "env-dump.txt"], check=True)
        subprocess.run(["git", "commit", "-q", "-m", "env dump"], check=True)
        return 0
    if scenario == "leak":
        for line in leaked_lines():
            print(f"debug: found credential {line}", flush=True)
        print("error: could not push with the credentials above", flush=True)
        return 1
    if scenario == "leak-cut":
        token = leaked_lines()[0]
        filler_size = EVIDENCE_CHARS - CUT_KEEP - 1  # the token's line ends with "\n"
        filler = ("." * 59 + "\n") * (filler_size // 60) + "." * (filler_size % 60 - 1) + "\n"
        sys.stdout.write(f"{token}\n{filler}")
        sys.stdout.flush()
        return 1
    if scenario == "probe":
        probe()
        return 0
    if scenario == "sleep":
        print("sleeping", flush=True)
        time.sleep(600)
        return 0
    print(f"unknown scenario {scenario}", flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
