"""Agent profiles: how to launch each coding-agent CLI (argv, prompt on stdin or in a file, extra
environment, runtime), the built-in ones, and the checks a profile must pass to be able to commit.

What each CLI printed on exit is read by :mod:`monitor.agent_output`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PROMPT_PLACEHOLDER = "{prompt_file}"
GIT_DIR_PLACEHOLDER = "{git_dir}"  # the worktree's own git directory (<repo>/.git/worktrees/<id>)
GIT_COMMON_PLACEHOLDER = "{git_common_dir}"  # the main repository's .git (objects, refs, logs)


class AgentProfile(BaseModel):
    """How to launch one agent CLI and how to read its output."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    command: list[str]
    prompt: Literal["stdin", "file"] = "stdin"
    env: dict[str, str] = Field(default_factory=dict)
    parser: Literal["claude", "codex", "aider", "gemini", "plain"] = "plain"
    forge_token: bool = False
    runtime: Literal["", "tmux", "container"] = ""  # "" = [runtime] default

    @field_validator("command")
    @classmethod
    def _command_not_empty(cls, value: list[str]) -> list[str]:
        if not value or not value[0].strip():
            raise ValueError("command must be a non-empty list whose first element names the program")
        return value

    @model_validator(mode="after")
    def _file_prompt_needs_placeholder(self) -> AgentProfile:
        if self.prompt == "file" and not any(PROMPT_PLACEHOLDER in part for part in self.command):
            raise ValueError(f'prompt = "file" needs an element of command containing "{PROMPT_PLACEHOLDER}"')
        return self


BUILTIN_PROFILES: dict[str, AgentProfile] = {
    "claude": AgentProfile(
        command=[
            "claude",
            "-p",
            "--output-format",
            "stream-json",
            "--verbose",
            "--dangerously-skip-permissions",
        ],
        env={"IS_SANDBOX": "1"},
        parser="claude",
    ),
    # workspace-write keeps every git directory read-only, so `git commit` in a worktree fails; the worktree's
    # git dir and the shared objects, refs and logs are made writable (fixtures/codex/README.md).
    "codex": AgentProfile(
        command=[
            "codex", "exec", "--json", "--sandbox", "workspace-write",
            "--add-dir", GIT_DIR_PLACEHOLDER,
            "--add-dir", f"{GIT_COMMON_PLACEHOLDER}/objects",
            "--add-dir", f"{GIT_COMMON_PLACEHOLDER}/refs",
            "--add-dir", f"{GIT_COMMON_PLACEHOLDER}/logs",
            "-",
        ],
        parser="codex",
    ),
    "aider": AgentProfile(
        command=["aider", "--yes-always", "--message-file", PROMPT_PLACEHOLDER], prompt="file", parser="aider"
    ),
    "gemini": AgentProfile(command=["gemini", "--output-format", "json", "--yolo"], parser="gemini"),
}


def resolve_profiles(user: Mapping[str, Mapping[str, Any]]) -> dict[str, AgentProfile]:
    """The built-in profiles with the user's tables merged over them key by key (new names need a command)."""
    profiles = dict(BUILTIN_PROFILES)
    for name, table in user.items():
        if not isinstance(table, Mapping):
            raise ValueError(f"agents.{name}: must be a table, not {type(table).__name__}")
        base = BUILTIN_PROFILES.get(name)
        if base is None and "command" not in table:
            raise ValueError(f"agents.{name}: command: required for a profile that is not built in")
        merged = {**(base.model_dump() if base else {}), **table}
        try:
            profiles[name] = AgentProfile.model_validate(merged)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(part) for part in first["loc"]) or "profile"
            message = str(first["msg"]).removeprefix("Value error, ")
            raise ValueError(f"agents.{name}: {field}: {message}") from None
    return profiles


def git_dirs(worktree: Path) -> tuple[Path, Path]:
    """(the worktree's git dir, the repository's common git dir), read from the ``.git`` file git writes
    into a linked worktree (``gitdir: ...``) and its ``commondir``; a plain checkout has one ``.git`` for both."""
    dot_git = worktree / ".git"
    try:
        if dot_git.is_file():
            line = dot_git.read_text(encoding="utf-8").strip()
            git_dir = (worktree / line.removeprefix("gitdir:").strip()).resolve()
            common = git_dir
            if (git_dir / "commondir").is_file():
                common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
            return git_dir, common
    except OSError:
        pass
    return dot_git, dot_git


_CODEX_GIT_DIRS = (GIT_DIR_PLACEHOLDER, f"{GIT_COMMON_PLACEHOLDER}/objects", f"{GIT_COMMON_PLACEHOLDER}/refs",
                   f"{GIT_COMMON_PLACEHOLDER}/logs")


def _codex_sandbox(command: list[str]) -> tuple[str, list[str]]:
    """(sandbox mode, writable directories) a ``codex exec`` command line asks for (read-only by default)."""
    mode, writable = "read-only", []
    for index, part in enumerate(command):
        value = command[index + 1] if index + 1 < len(command) else ""
        if part in ("--sandbox", "-s"):
            mode = value
        elif part.startswith("--sandbox="):
            mode = part.split("=", 1)[1]
        elif part == "--full-auto":
            mode = "workspace-write"
        elif part == "--dangerously-bypass-approvals-and-sandbox":
            mode = "danger-full-access"
        elif part == "--add-dir":
            writable.append(value)
        elif part in ("-c", "--config") and value.replace(" ", "").startswith("sandbox_mode="):
            mode = value.split("=", 1)[1].strip().strip("\"'")
        elif part in ("-c", "--config") and "writable_roots" in value:
            writable += re.findall(r"[\"']([^\"']+)[\"']", value.split("=", 1)[-1])
    return mode, writable


def commit_problem(profile: AgentProfile) -> str:
    """Why this profile's agent could not ``git commit`` in its worktree ("" when it can, as far as its
    command line tells): Codex's sandbox keeps every git directory read-only unless they are made writable."""
    if profile.parser != "codex" and Path(profile.command[0]).name != "codex":
        return ""
    mode, writable = _codex_sandbox(profile.command)
    fix = ("use the built-in command (drop `command` from the profile), which adds "
           + " ".join(f"--add-dir {d}" for d in _CODEX_GIT_DIRS) + ", or run with --sandbox danger-full-access")
    if mode == "danger-full-access":
        return ""
    if mode != "workspace-write":
        return f"codex sandbox {mode!r} cannot write files or commit — {fix}"
    missing = [d for d in _CODEX_GIT_DIRS if d not in writable]
    if missing:
        return ("codex --sandbox workspace-write keeps the worktree's git directory read-only, so every "
                f"`git commit` fails (missing writable {', '.join(missing)}) — {fix}")
    return ""


def render_argv(profile: AgentProfile, prompt_file: Path, worktree: Path | None = None) -> list[str]:
    """The argv to execute (no shell involved), with ``{prompt_file}``, ``{git_dir}`` and ``{git_common_dir}``
    (the git directories of ``worktree``, where the agent runs) replaced inside every element."""
    git_dir, common = git_dirs(worktree) if worktree is not None else (Path(".git"), Path(".git"))
    return [
        part.replace(PROMPT_PLACEHOLDER, str(prompt_file))
        .replace(GIT_DIR_PLACEHOLDER, str(git_dir))
        .replace(GIT_COMMON_PLACEHOLDER, str(common))
        for part in profile.command
    ]
