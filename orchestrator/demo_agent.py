"""DEMO STAND-IN, not a coding agent: a deterministic script that `swarm demo` configures as its agent.

It reads the prompt on stdin like Claude Code does, prints Claude-Code-shaped stream-json (so the real
``claude`` parser reads it), and plays the scenario named in the prompt: finish normally, run slowly
until the demo kills it, commit a bug that CI catches (and fix it from the CI output quoted in the retry
prompt), or claim success without committing anything (a phantom).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

CODE = {
    "export": ("export.py",
               'def to_csv(rows):\n    return "\\n".join(",".join(str(c) for c in row) for row in rows)\n'),
    "totals": ("totals.py", "def invoice_total(lines):\n    return round(sum(q * p for q, p in lines), 2)\n"),
    "currency": ("currency.py", 'def format_currency(cents):\n    return f"${cents // 100}.{cents % 100:02d}"\n'),
}
TOOL_ID = iter(range(1, 1000))


def emit(event: dict[str, Any]) -> None:
    print(json.dumps(event), flush=True)


def say(text: str) -> None:
    emit({"type": "assistant", "message": {"content": [{"type": "text", "text": text}]}})


def tool(name: str, payload: dict[str, Any]) -> None:
    emit({"type": "assistant", "message": {"content": [
        {"type": "tool_use", "id": f"toolu_demo_{next(TOOL_ID)}", "name": name, "input": payload}]}})


def write_and_commit(path: str, content: str, message: str) -> None:
    tool("Write", {"file_path": path, "content": content})
    Path(path).write_text(content, encoding="utf-8")
    time.sleep(0.5)
    tool("Bash", {"command": f"git add {path} && git commit -m '{message}'"})
    subprocess.run(["git", "add", path], check=True)
    subprocess.run(["git", "commit", "-q", "-m", message], check=True)


def finish(text: str, turns: int, is_error: bool = False) -> None:
    emit({
        "type": "result", "subtype": "success", "is_error": is_error, "num_turns": turns, "result": text,
        "total_cost_usd": 0.0123 * turns, "usage": {"input_tokens": 1200 * turns, "output_tokens": 300 * turns},
    })


def main() -> int:
    prompt = sys.stdin.read()
    found = re.search(r"demo-scenario: (\w+)", prompt)
    scenario = found.group(1) if found else "export"
    retry = re.search(r"## Attempt (\d+) of", prompt)
    attempt = int(retry.group(1)) if retry else 1
    emit({"type": "system", "subtype": "init", "model": "demo-stand-in", "cwd": str(Path.cwd())})
    say(f"Working on the {scenario} task (attempt {attempt}).")
    if scenario == "slow" and attempt == 1:
        for step in range(240):  # the demo kills this session mid-task
            say(f"still working on step {step}...")
            time.sleep(0.25)
        return 0
    if scenario == "phantom" and attempt == 1:
        say("I implemented format_currency, added tests, and committed everything.")
        finish("Done: format_currency implemented, tests pass, changes committed.", 1)
        return 0
    if scenario == "discount":
        rate = "0.10"
        expected = re.search(r"expected (\d+)", prompt) if attempt > 1 else None
        if expected:
            say(f"CI says pro_discount(100) must be {expected.group(1)}; fixing the rate.")
            rate = f"{1 - int(expected.group(1)) / 100:.2f}"
        code = f"def pro_discount(price):\n    return round(price * (1 - {rate}), 2)\n"
        write_and_commit("discount.py", code, f"Pro plan discount ({rate})")
        finish("Added pro_discount.", 3)
        return 0
    name = {"slow": "totals", "phantom": "currency"}.get(scenario, scenario)
    path, code = CODE[name]
    time.sleep(1.0)
    write_and_commit(path, code, f"Add {path}")
    finish(f"Added {path} and committed it.", 3)
    return 0


if __name__ == "__main__":
    sys.exit(main())
