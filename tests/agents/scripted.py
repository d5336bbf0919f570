"""A scripted agent for tests: reads the prompt on stdin and acts out the line ``scenario: NAME``.

On a retry (the prompt says "## Attempt N of") the scenario ``NAME`` becomes ``NAME-retry`` when the
prompt contains it, so one prompt can script every attempt, e.g. ``scenario: fail`` plus
``retry: commit``.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path


def commit(name: str, content: str) -> None:
    Path(name).write_text(content)
    subprocess.run(["git", "add", name], check=True)
    subprocess.run(["git", "commit", "-q", "-m", f"add {name}"], check=True)


def main() -> int:
    prompt = sys.stdin.read()
    attempt_match = re.search(r"## Attempt (\d+) of", prompt)
    attempt = int(attempt_match.group(1)) if attempt_match else 1
    first = re.search(r"^scenario: (\S+)", prompt, re.M)
    retry = re.search(r"^(?:- )?retry: (\S+)", prompt, re.M)  # also from a human note ("- retry: ...")
    scenario = (retry.group(1) if retry and attempt > 1 else None) or (first.group(1) if first else "commit")
    print(f"scripted agent: attempt {attempt}, scenario {scenario}", flush=True)
    Path(f".attempt-{attempt}.prompt").write_text(prompt) if "keep-prompt" in prompt else None
    if scenario == "commit":
        commit(f"work-{attempt}.txt", f"attempt {attempt}\n")
        return 0
    if scenario == "commit-push":  # an agent that pushes its branch itself (and may open its own PR)
        commit(f"work-{attempt}.txt", f"attempt {attempt}\n")
        subprocess.run(["git", "push", "-q", "origin", "HEAD"], check=True)
        return 0
    if scenario == "commit-ui-shot":
        Path("ui").mkdir(exist_ok=True)
        Path(".swarm-screenshots").mkdir(exist_ok=True)
        Path(".swarm-screenshots/page.png").write_bytes(b"\x89PNG not really\n")
        commit("ui/page.tsx", f"export const Page = () => {attempt};\n")
        subprocess.run(["git", "add", ".swarm-screenshots/page.png"], check=True)
        subprocess.run(["git", "commit", "-q", "-m", "screenshot"], check=True)
        return 0
    if scenario == "merge-origin":  # resolve a conflict with the remote base by keeping our side
        subprocess.run(["git", "fetch", "-q", "origin", "main"], check=True)
        subprocess.run(["git", "merge", "--no-edit", "-q", "-X", "ours", "FETCH_HEAD"], check=True)
        return 0
    if scenario.startswith("write:"):  # write:NAME:WORD commits NAME holding WORD (stacked-task tests)
        _, name, word = scenario.split(":", 2)
        commit(name, f"{word}\n")
        return 0
    if scenario == "restack-resolve":  # run the restack command the evidence names, keeping our commit's side
        found = re.search(r"git rebase --onto ([0-9a-f]{40}) ([0-9a-f]{40})", prompt)
        if found is None:
            print("no restack command in the prompt", flush=True)
            return 4
        subprocess.run(["git", "rebase", "-X", "theirs", "--onto", found.group(1), found.group(2)], check=True)
        return 0
    if scenario == "commit-good":
        commit("value.txt", "good\n")
        return 0
    if scenario == "commit-bad":
        commit("value.txt", "bad\n")
        return 0
    if scenario == "edit-shared":
        commit("shared.txt", "the agent's version\n")
        return 0
    if scenario == "merge-main":  # resolve a conflict with the base by keeping our side
        subprocess.run(["git", "merge", "--no-edit", "-q", "-X", "ours", "main"], check=True)
        return 0
    if scenario == "commit-ui":
        Path("ui").mkdir(exist_ok=True)
        commit("ui/page.tsx", "export const Page = () => null;\n")
        return 0
    if scenario == "add-screenshot":
        Path(".swarm-screenshots").mkdir(exist_ok=True)
        commit(".swarm-screenshots/page.png", "not really a png\n")
        return 0
    if scenario == "fail":
        print("error: the agent broke down", flush=True)
        return 3
    if scenario == "phantom":
        print("All done, tests pass and everything is committed.", flush=True)
        return 0
    if scenario == "commit-then-hang":
        commit("value.txt", "good\n")
        time.sleep(600)
        return 0
    if scenario == "sleep":
        time.sleep(600)
        return 0
    if scenario == "chatty":
        for step in range(2400):
            print(f"step {step}", flush=True)
            time.sleep(0.25)
        return 0
    print(f"unknown scenario {scenario}", flush=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
