"""A stand-in agent that runs inside the test image (python3 and git only; no swarm code): reads the prompt
on stdin and acts out ``scenario: NAME`` (``retry: NAME`` from the second attempt on).

* ``commit``: commits a file and exits 0.
* ``sleep``: prints a line and sleeps (to be killed, or for the engine to go away).
* ``hog``: allocates far more memory than the container may use.
* ``probe``: prints the environments of PID 1, of its parent and its own (``probe: SOURCE NAME=VALUE``),
  tries to write every ``escape: PATH`` of the prompt (``escape: PATH ok|failed``), then commits.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path


def commit(attempt: int) -> None:
    Path(f"work-{attempt}.txt").write_text(f"attempt {attempt}\n")
    subprocess.run(["git", "add", f"work-{attempt}.txt"], check=True)
    subprocess.run(["git", "commit", "-q", "-m", f"work {attempt}"], check=True)


def probe(prompt: str) -> None:
    for source in ("/proc/1/environ", f"/proc/{os.getppid()}/environ", "/proc/self/environ"):
        try:
            items = Path(source).read_bytes().split(b"\0")
        except OSError as exc:
            print(f"probe: {source} unreadable {exc}", flush=True)
            continue
        for item in items:
            if item:
                print(f"probe: {source} {item.decode(errors='replace')}", flush=True)
    for target in re.findall(r"^escape: (\S+)", prompt, re.M):
        try:
            Path(target).write_text("written from the container\n")
            print(f"escape: {target} ok", flush=True)
        except OSError as exc:
            print(f"escape: {target} failed {exc.strerror}", flush=True)


def main() -> int:
    prompt = sys.stdin.read()
    found = re.search(r"## Attempt (\d+) of", prompt)
    attempt = int(found.group(1)) if found else 1
    first = re.search(r"^scenario: (\S+)", prompt, re.M)
    retry = re.search(r"^(?:- )?retry: (\S+)", prompt, re.M)
    scenario = (retry.group(1) if retry and attempt > 1 else None) or (first.group(1) if first else "commit")
    print(f"boxed agent: attempt {attempt}, scenario {scenario}", flush=True)
    if scenario == "sleep":
        time.sleep(600)
    elif scenario == "hog":
        hog = bytearray(1024 * 2**20)
        print(len(hog), flush=True)
    elif scenario == "probe":
        probe(prompt)
        commit(attempt)
    else:
        commit(attempt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
