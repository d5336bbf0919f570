"""A test agent whose every attempt runs a step the test wrote: ``$STEPS_DIR/attempt-N.py`` (with the
worktree as the working directory), after saving its prompt to ``$STEPS_DIR/prompt-N.md``. A step that is
missing commits nothing (a phantom). Used by the fixer and merge-train scenarios."""

from __future__ import annotations

import os
import re
import runpy
import sys
from pathlib import Path


def main() -> int:
    prompt = sys.stdin.read()
    found = re.search(r"## Attempt (\d+) of", prompt)
    attempt = int(found.group(1)) if found else 1
    steps = Path(os.environ["STEPS_DIR"])
    (steps / f"prompt-{attempt}.md").write_text(prompt)
    step = steps / f"attempt-{attempt}.py"
    print(f"steps agent: attempt {attempt}", flush=True)
    if step.exists():
        runpy.run_path(str(step), run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main())
