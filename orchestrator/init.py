"""`swarm init`: a commented swarm.toml with the contract's defaults, and a git-excluded .swarm/."""

from __future__ import annotations

import re
from pathlib import Path

from monitor.world.git import Git, GitError
from orchestrator.config import CONFIG_NAME, parse
from orchestrator.wiring import UsageError

TEMPLATE = """\
# swarm configuration. No secrets here: *_env keys name the environment variables that hold them.

[project]
base_branch = "{base}"
forge = "{forge}"                # "local" | "github"
# setup = "pip install -e ."     # run once in every new worktree, before the agent starts

[routing]                        # task kind -> agent profile (built-ins: claude, codex, aider, gemini)
default = "claude"

# [agents.claude]                # override or add profiles; argv lists, never shell strings
# command = ["claude", "-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
# prompt = "stdin"               # or "file": the command gets {{prompt_file}}
# env = {{ IS_SANDBOX = "1" }}

[monitor]
interval = "5m"
max_attempts = 3
stuck_after = "20m"
attempt_timeout = "2h"
max_parallel = 4
# tmux_socket = "swarm"         # default: a socket of this repository's own (swarm-NAME-HASH)

[done]
reviews = 0                      # approvals needed from `reviewers`
reviewers = []
screenshots_for = []             # e.g. ["web/**", "*.css", "*.tsx"]

[local]
ci = "{ci}"                      # run in the worktree at each new head; empty = no CI
{github}"""

GITHUB = """
[github]
repo = "{repo}"
api_url = "https://api.github.com"  # GitHub Enterprise: "https://HOST/api/v3"
token_env = "GITHUB_TOKEN"          # the token itself stays in the environment, never here
remote = "origin"                   # fetched for the base, pushed to for the agents' branches
ci_grace = "2m"                     # a new head with no checks yet waits this long before "no CI"
"""


def _guess_ci(repo: Path) -> str:
    if (repo / "Makefile").exists() and re.search(r"^test:", (repo / "Makefile").read_text(), re.M):
        return "make test"
    if (repo / "pyproject.toml").exists() or (repo / "tests").is_dir():
        return "python -m pytest -q"
    if (repo / "package.json").exists():
        return "npm test"
    return ""


def init_repo(cwd: Path, forge: str, repo_name: str, force: bool) -> list[str]:
    if forge not in ("local", "github"):
        raise UsageError(f"--forge {forge!r}: use local or github")
    if forge == "github" and not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_name):
        raise UsageError("--forge github needs --repo OWNER/NAME")
    try:
        git = Git(cwd)
        top = git.toplevel()
    except GitError:
        raise UsageError(f"{cwd} is not inside a git repository; run `git init` first") from None
    config = top / CONFIG_NAME
    if config.exists() and not force:
        raise UsageError(f"{config} already exists; edit it, or pass --force to overwrite")
    base = "main"
    for candidate in ("main", "master", "trunk"):
        if git.branch_exists(candidate):
            base = candidate
            break
    text = TEMPLATE.format(base=base, forge=forge, ci=_guess_ci(top),
                           github=GITHUB.format(repo=repo_name) if forge == "github" else "")
    import tomllib

    parse(tomllib.loads(text), config)  # never write a file the loader would reject
    config.write_text(text, encoding="utf-8")
    (top / ".swarm").mkdir(exist_ok=True)
    exclude = git.git_dir() / "info" / "exclude"
    exclude.parent.mkdir(parents=True, exist_ok=True)
    current = exclude.read_text() if exclude.exists() else ""
    if ".swarm/" not in current.splitlines():
        exclude.write_text(current + ("" if current.endswith("\n") or not current else "\n") + ".swarm/\n")
    return [
        f"wrote {config}",
        f"created {top / '.swarm'} (git-excluded)",
        "next: swarm spawn --title \"...\" --prompt-file task.md   then   swarm monitor run-once",
    ]
