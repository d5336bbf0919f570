"""`swarm init`: a commented swarm.toml with the contract's defaults, and a git-excluded .swarm/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from monitor.statedir import ensure_state_dir
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


NO_COMMITS = ("the repository has no commits yet, and agents branch from a commit of the base branch: "
              "commit something first (e.g. `git commit --allow-empty -m \"initial commit\"`)")


def unborn_branch(repo: Path) -> str:
    """The branch HEAD names when the repository has no commits yet ("" otherwise, or outside git)."""
    def git(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True,
                              timeout=30, check=False)

    if git("rev-parse", "--verify", "-q", "HEAD").returncode == 0:
        return ""
    branch = git("symbolic-ref", "--short", "-q", "HEAD")
    return branch.stdout.strip() if branch.returncode == 0 else ""


def _backup(config: Path) -> Path:
    """A copy of the old file beside it: swarm.toml.bak, else the first free swarm.toml.bak.N."""
    target = config.with_name(config.name + ".bak")
    number = 2
    while target.exists():
        target = config.with_name(f"{config.name}.bak.{number}")
        number += 1
    shutil.copy2(config, target)
    return target


def init_repo(cwd: Path, forge: str, repo_name: str, force: bool) -> list[str]:
    """Write swarm.toml at the top of the repository holding ``cwd`` (any subdirectory works)."""
    if forge not in ("local", "github"):
        raise UsageError(f"--forge {forge!r}: use local or github")
    if forge == "github" and not re.fullmatch(r"[\w.-]+/[\w.-]+", repo_name):
        raise UsageError("--forge github needs --repo OWNER/NAME")
    found = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True,
                           timeout=30, check=False)  # from any subdirectory: the config goes at the top
    try:
        if found.returncode != 0 or not found.stdout.strip():
            raise GitError(found.stderr.strip())
        top = Path(found.stdout.strip()).resolve()
        git = Git(top)
    except GitError:
        raise UsageError(f"{cwd} is not inside a git repository; run `git init` first") from None
    config = top / CONFIG_NAME
    if config.exists() and not force:
        raise UsageError(f"{config} already exists; edit it, or pass --force to overwrite (the old file is kept "
                         f"as {CONFIG_NAME}.bak)")
    unborn = unborn_branch(top)
    base = unborn or "main"
    for candidate in ("main", "master", "trunk"):
        if not unborn and git.branch_exists(candidate):
            base = candidate
            break
    text = TEMPLATE.format(base=base, forge=forge, ci=_guess_ci(top),
                           github=GITHUB.format(repo=repo_name) if forge == "github" else "")
    import tomllib

    parse(tomllib.loads(text), config)  # never write a file the loader would reject
    lines = []
    if config.exists():
        lines.append(f"kept the old {CONFIG_NAME} as {_backup(config)}")
    config.write_text(text, encoding="utf-8")
    state_dir = ensure_state_dir(top / ".swarm")
    lines += [f"wrote {config}", f"created {state_dir} (git-excluded)"]
    if unborn:
        lines.append(f"warning: {NO_COMMITS}")
    lines.append("next: swarm spawn --title \"...\" --prompt-file task.md   then   swarm monitor run-once")
    return lines
