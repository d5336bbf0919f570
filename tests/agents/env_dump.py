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
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

EVIDENCE_CHARS = 1500  # monitor/decide.py quotes the last 1500 characters of the agent's last message
CUT_KEEP = 26  # characters of the token left after the cut


def marker(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def leaked_lines() -> list[str]:
    return Path(os.environ["SWARM_TEST_LEAK_FILE"]).read_text().splitlines()


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
    if scenario == "sleep":
        print("sleeping", flush=True)
        time.sleep(600)
        return 0
    print(f"unknown scenario {scenario}", flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
