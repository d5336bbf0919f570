"""Agent profiles and output parsers, checked against real recorded CLI output (tests/fixtures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from monitor.agent_output import AgentReport, parse_output
from monitor.agents import (
    BUILTIN_PROFILES,
    AgentProfile,
    commit_problem,
    render_argv,
    resolve_profiles,
)
from tests.conftest import git


def _claude(fixtures_dir: Path, name: str, exit_code: int) -> AgentReport:
    return parse_output("claude", (fixtures_dir / "claude-code" / name).read_text(), exit_code)


def _codex(fixtures_dir: Path, name: str, exit_code: int) -> AgentReport:
    return parse_output("codex", (fixtures_dir / "codex" / name).read_text(), exit_code)


# ------------------------------------------------------------------------------------ claude recordings


def test_claude_success_stream(fixtures_dir: Path) -> None:
    report = _claude(fixtures_dir, "success-stream-json.jsonl", 0)
    assert report.parser == "claude"
    assert report.tool_calls == 2  # Write, then Bash
    assert report.has_result
    assert not report.is_error and not report.api_error and not report.max_turns
    assert report.subtype == "success"
    assert report.num_turns == 3
    assert report.cost_usd == pytest.approx(0.015)
    assert report.input_tokens == 3000
    assert report.output_tokens == 150
    assert report.final_text == "Added greet() in greet.py and committed it."
    assert report.error == ""


def test_claude_success_single_json_object(fixtures_dir: Path) -> None:
    report = _claude(fixtures_dir, "success-json.json", 0)
    assert report.has_result
    assert not report.is_error
    assert report.subtype == "success"
    assert report.num_turns == 3
    assert report.cost_usd > 0
    assert report.input_tokens == 3000 and report.output_tokens == 150
    assert report.final_text == "Added greet() in greet.py and committed it."


def test_claude_success_stream_survives_stray_text(fixtures_dir: Path) -> None:
    lines = (fixtures_dir / "claude-code" / "success-stream-json.jsonl").read_text().splitlines()
    mixed = ["Warning: something on stdout", *lines[:2], "{not json", "", *lines[2:], "trailing junk"]
    report = parse_output("claude", "\n".join(mixed), 0)
    assert report.tool_calls == 2
    assert report.subtype == "success" and report.num_turns == 3 and not report.is_error


def test_claude_phantom_has_no_tool_calls(fixtures_dir: Path) -> None:
    report = _claude(fixtures_dir, "phantom-stream-json.jsonl", 0)
    assert report.tool_calls == 0
    assert not report.is_error
    assert report.has_result
    assert report.subtype == "success"
    assert "committed" in report.final_text  # the claim that the monitor must not believe


def test_claude_max_turns(fixtures_dir: Path) -> None:
    report = _claude(fixtures_dir, "maxturns-stream-json.jsonl", 1)
    assert report.max_turns
    assert report.is_error
    assert not report.api_error
    assert report.subtype == "error_max_turns"
    assert report.tool_calls == 2
    assert report.num_turns == 3
    assert "maximum number of turns" in report.error


def test_claude_api_error_400_hidden_behind_success_subtype(fixtures_dir: Path) -> None:
    report = _claude(fixtures_dir, "apierror400-stream-json.jsonl", 1)
    assert report.subtype == "success"
    assert report.is_error
    assert report.api_error
    assert report.has_result
    assert report.tool_calls == 0
    assert report.error.startswith("API Error: 400")


def test_claude_killed_while_retrying_api(fixtures_dir: Path) -> None:
    report = _claude(fixtures_dir, "apierror-stream-json.jsonl", 124)
    assert not report.has_result
    assert report.api_error
    assert report.is_error
    assert report.subtype is None and report.num_turns is None
    assert "500" in report.error and "9/10" in report.error


def test_claude_input_tokens_include_cache() -> None:
    line = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "num_turns": 1,
        "total_cost_usd": 0.2,
        "result": "done",
        "usage": {
            "input_tokens": 10,
            "cache_creation_input_tokens": 200,
            "cache_read_input_tokens": 3000,
            "output_tokens": 7,
        },
    }
    report = parse_output("claude", json.dumps(line), 0)
    assert report.input_tokens == 3210
    assert report.output_tokens == 7


def test_claude_verbose_json_array_form(fixtures_dir: Path) -> None:
    lines = (fixtures_dir / "claude-code" / "success-stream-json.jsonl").read_text().splitlines()
    array = json.dumps([json.loads(line) for line in lines if line.strip()], indent=2)
    report = parse_output("claude", array, 0)
    assert report.tool_calls == 2
    assert report.has_result and report.num_turns == 3


def test_claude_without_result_record() -> None:
    clean = parse_output("claude", '{"type":"system","subtype":"init"}\n', 0)
    assert not clean.has_result and not clean.is_error and clean.error == ""
    crashed = parse_output("claude", '{"type":"system","subtype":"init"}\nError: invalid API key\n', 1)
    assert crashed.is_error and not crashed.api_error
    assert crashed.error == "Error: invalid API key"


def test_claude_caps_final_text_and_error() -> None:
    text = "a" * 3000 + "THE END"
    line = {"type": "result", "subtype": "error_during_execution", "is_error": True, "result": text}
    report = parse_output("claude", json.dumps(line), 1)
    assert len(report.final_text) == 2000
    assert report.final_text.endswith("THE END")
    assert report.is_error
    assert 0 < len(report.error) <= 300 and "\n" not in report.error


# ------------------------------------------------------------------------------------- codex recordings


def test_codex_success(fixtures_dir: Path) -> None:
    report = _codex(fixtures_dir, "success.jsonl", 0)
    assert report.parser == "codex"
    assert report.tool_calls == 1  # started + completed events of one item count once
    assert report.failed_commands == 0
    assert report.has_result
    assert not report.is_error and not report.api_error  # the "Model metadata" error item is a warning
    assert report.input_tokens == 2000 and report.output_tokens == 100
    assert report.final_text == "Added greet() in greet.py and committed it."
    assert report.error == ""


def test_codex_phantom(fixtures_dir: Path) -> None:
    report = _codex(fixtures_dir, "phantom.jsonl", 0)
    assert report.tool_calls == 0
    assert not report.is_error
    assert report.has_result
    assert "committed everything" in report.final_text


def test_codex_failing_command_with_exit_code_zero(fixtures_dir: Path) -> None:
    report = _codex(fixtures_dir, "failing-cmd.jsonl", 0)
    assert report.failed_commands == 1
    assert report.failed_command == "$ /bin/bash -lc \"python3 -c 'import sys; sys.exit(3)'\" (exit 3)"
    assert report.tool_calls == 1
    assert not report.is_error  # the CLI itself exited 0 and completed the turn
    assert report.final_text == "The command failed; I could not finish."


def test_codex_api_error_400(fixtures_dir: Path) -> None:
    report = _codex(fixtures_dir, "apierror400.jsonl", 1)
    assert report.is_error and report.api_error
    assert report.has_result
    assert report.tool_calls == 0
    assert report.error == "scripted failure (server_error)"  # unwrapped from the JSON body


def test_codex_api_error_500_after_reconnects(fixtures_dir: Path) -> None:
    report = _codex(fixtures_dir, "apierror500.jsonl", 1)
    assert report.is_error and report.api_error
    assert "high demand" in report.error
    assert report.final_text == ""


def test_codex_output_tokens_include_reasoning() -> None:
    line = {"type": "turn.completed", "usage": {"input_tokens": 5, "output_tokens": 10, "reasoning_output_tokens": 90}}
    report = parse_output("codex", json.dumps(line), 0)
    assert report.output_tokens == 100 and report.input_tokens == 5


def test_codex_killed_mid_command() -> None:
    started = {"type": "item.started", "item": {"id": "item_1", "type": "command_execution", "status": "in_progress"}}
    report = parse_output("codex", json.dumps({"type": "turn.started"}) + "\n" + json.dumps(started), 124)
    assert report.tool_calls == 1
    assert report.is_error and not report.has_result and not report.api_error


def test_codex_turn_failure_not_about_api() -> None:
    failed = {"type": "turn.failed", "error": {"message": "the agent gave up"}}
    report = parse_output("codex", json.dumps(failed), 1)
    assert report.is_error and not report.api_error and not report.context_exhausted
    assert report.error == "the agent gave up"


def test_codex_context_window_is_context_exhaustion(fixtures_dir: Path) -> None:
    report = _codex(fixtures_dir, "contextwindow.jsonl", 1)
    assert report.is_error and report.context_exhausted
    assert not report.api_error  # not "the API failed, continue": the scope must shrink
    assert "ran out of room in the model's context window" in report.error


def test_claude_prompt_too_long_is_context_exhaustion(fixtures_dir: Path) -> None:
    report = _claude(fixtures_dir, "prompttoolong-stream-json.jsonl", 1)
    assert report.is_error and report.context_exhausted
    assert not report.api_error and not report.max_turns
    assert report.error.startswith("Prompt is too long")
    assert report.model == "claude-opus-5-5"  # from the init event


def test_failed_command_output_is_kept() -> None:
    item = {"id": "i", "type": "command_execution", "command": "pytest", "exit_code": 1, "status": "failed",
            "aggregated_output": "x" * 5000 + "\nE   AssertionError: 2 != 3\n"}
    report = parse_output("codex", json.dumps({"type": "item.completed", "item": item}), 0)
    assert report.failed_command.startswith("$ pytest (exit 1)\n")
    assert report.failed_command.endswith("E   AssertionError: 2 != 3")
    assert len(report.failed_command) < 1600


def test_codex_cached_tokens() -> None:
    line = {"type": "turn.completed", "usage": {"input_tokens": 50, "cached_input_tokens": 40, "output_tokens": 1}}
    assert parse_output("codex", json.dumps(line), 0).cached_input_tokens == 40


def test_codex_counts_file_changes() -> None:
    events = [
        {"type": "item.completed", "item": {"id": "a", "type": "file_change", "status": "completed"}},
        {"type": "item.completed", "item": {"type": "command_execution", "exit_code": 2, "status": "failed"}},
        {"type": "item.completed", "item": {"type": "command_execution", "exit_code": 0}},
        {"type": "turn.completed", "usage": {}},
    ]
    report = parse_output("codex", "\n".join(json.dumps(event) for event in events), 0)
    assert report.tool_calls == 3
    assert report.failed_commands == 1


# ------------------------------------------------------------------------------------ unstructured agents


@pytest.mark.parametrize("parser", ["aider", "plain"])
def test_unstructured_output(parser: str) -> None:
    ok = parse_output(parser, "x" * 5000 + "\nApplied edit to greet.py\n", 0)
    assert ok.parser == parser
    assert not ok.is_error and ok.error == "" and ok.tool_calls == 0
    assert len(ok.final_text) == 2000 and ok.final_text.endswith("Applied edit to greet.py\n")
    failed = parse_output(parser, "working...\nModel error: quota exceeded\n\n  \n", 2)
    assert failed.is_error
    assert failed.error == "Model error: quota exceeded"


def test_gemini_json_output_after_stray_text() -> None:
    payload = {
        "response": "Added greet().",
        "stats": {
            "models": {"gemini-2.5-pro": {"tokens": {"prompt": 1200, "candidates": 80, "thoughts": 20}}},
            "tools": {"totalCalls": 4},
        },
    }
    text = "Loaded cached credentials.\n" + json.dumps(payload, indent=2) + "\n"
    report = parse_output("gemini", text, 0)
    assert report.final_text == "Added greet()."
    assert report.tool_calls == 4
    assert report.input_tokens == 1200 and report.output_tokens == 100
    assert report.has_result and not report.is_error and not report.max_turns


def test_gemini_error_and_turn_limit() -> None:
    error = {"error": {"type": "ApiError", "message": "API error: 429 Resource exhausted", "code": 429}}
    report = parse_output("gemini", json.dumps(error), 1)
    assert report.is_error and report.api_error
    assert report.error == "API error: 429 Resource exhausted"
    limited = parse_output("gemini", json.dumps({"response": "partial"}), 53)
    assert limited.max_turns and limited.is_error
    garbage = parse_output("gemini", "Segmentation fault\n", 139)
    assert garbage.is_error and not garbage.has_result and garbage.error == "Segmentation fault"


# ------------------------------------------------------------------------------------ garbage and errors

GARBAGE = [
    "",
    "\x00\xff binary \x1b[31m noise",
    "[" * 100_000,
    "{" * 5000,
    "null\n42\n[1, 2]\n\"str\"",
    '{"type":"assistant","message":{"content":5}}',
    '{"type":"assistant","message":"nope"}',
    '{"type":"result","usage":5,"num_turns":"x","total_cost_usd":1e999,"subtype":7,"errors":3}',
    '{"type":"result","usage":{"input_tokens":1e400,"output_tokens":' + "9" * 400 + "}}",
    '{"type":"item.completed","item":[1]}\n{"type":"turn.failed","error":"boom"}',
    '{"type":"error","message":{"nested":true}}',
    '{"response":5,"stats":{"models":[1],"tools":"x"},"error":"plain string"}',
]


@pytest.mark.parametrize("parser", ["claude", "codex", "aider", "gemini", "plain"])
@pytest.mark.parametrize("text", GARBAGE)
def test_garbage_never_raises(parser: str, text: str) -> None:
    report = parse_output(parser, text, 1)
    assert report.parser == parser
    # exit code 1 is an error unless a final result record (which then decides) was found
    assert report.is_error or report.has_result
    assert report.cost_usd >= 0 and report.input_tokens >= 0 and report.output_tokens >= 0
    assert len(report.error) <= 300 and "\n" not in report.error


def test_garbage_numbers_become_zero() -> None:
    report = parse_output("claude", GARBAGE[7], 1)
    assert report.has_result
    assert report.cost_usd == 0.0 and report.num_turns is None and report.subtype is None
    assert not report.is_error  # the record says nothing about an error; it is what decides


def test_unknown_parser() -> None:
    with pytest.raises(ValueError, match="unknown agent output parser 'cursor'"):
        parse_output("cursor", "", 0)


def test_report_is_frozen() -> None:
    report = parse_output("plain", "hi", 0)
    with pytest.raises(ValidationError):
        report.is_error = True  # type: ignore[misc]


# --------------------------------------------------------------------------------------------- profiles


def test_builtin_profiles() -> None:
    assert set(BUILTIN_PROFILES) == {"claude", "codex", "aider", "gemini"}
    claude = BUILTIN_PROFILES["claude"]
    assert claude.command == [
        "claude",
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--dangerously-skip-permissions",
    ]
    assert claude.prompt == "stdin" and claude.env == {"IS_SANDBOX": "1"} and claude.parser == "claude"
    codex = BUILTIN_PROFILES["codex"].command
    assert codex[:5] == ["codex", "exec", "--json", "--sandbox", "workspace-write"] and codex[-1] == "-"
    # workspace-write alone makes every git dir read-only: the worktree's own and the shared ones are added
    assert [codex[i + 1] for i, part in enumerate(codex) if part == "--add-dir"] == [
        "{git_dir}", "{git_common_dir}/objects", "{git_common_dir}/refs", "{git_common_dir}/logs"]
    assert BUILTIN_PROFILES["codex"].parser == "codex"
    aider = BUILTIN_PROFILES["aider"]
    assert aider.prompt == "file" and aider.parser == "aider" and "{prompt_file}" in aider.command
    assert BUILTIN_PROFILES["gemini"].command == ["gemini", "--output-format", "json", "--yolo"]
    assert not any(profile.forge_token for profile in BUILTIN_PROFILES.values())


def test_resolve_profiles_without_user_tables() -> None:
    assert resolve_profiles({}) == BUILTIN_PROFILES


def test_resolve_profiles_merges_key_by_key() -> None:
    profiles = resolve_profiles({"claude": {"env": {"ANTHROPIC_MODEL": "opus"}, "forge_token": True}})
    claude = profiles["claude"]
    assert claude.env == {"ANTHROPIC_MODEL": "opus"}  # replaced, not merged
    assert claude.command == BUILTIN_PROFILES["claude"].command
    assert claude.parser == "claude" and claude.forge_token
    assert BUILTIN_PROFILES["claude"].env == {"IS_SANDBOX": "1"}  # built-ins untouched
    assert profiles["codex"] == BUILTIN_PROFILES["codex"]


def test_resolve_profiles_new_profile() -> None:
    profiles = resolve_profiles({"lint-bot": {"command": ["./bot.sh", "--in", "{prompt_file}"], "prompt": "file"}})
    bot = profiles["lint-bot"]
    assert bot.parser == "plain" and bot.env == {} and not bot.forge_token
    assert render_argv(bot, Path("/tmp/p.md")) == ["./bot.sh", "--in", "/tmp/p.md"]
    assert "command" not in resolve_profiles({})


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"mine": {"env": {"A": "1"}}}, r"^agents\.mine: command: "),
        ({"claude": {"bogus": 1}}, r"^agents\.claude: bogus: "),
        ({"codex": {"command": "codex exec"}}, r"^agents\.codex: command: "),
        ({"mine": {"command": []}}, r"^agents\.mine: command: .*non-empty"),
        ({"mine": {"command": ["x"], "parser": "cursor"}}, r"^agents\.mine: parser: "),
        ({"mine": {"command": ["x"], "env": {"A": 1}}}, r"^agents\.mine: env\.A: "),
        ({"claude": {"prompt": "file"}}, r"^agents\.claude: .*\{prompt_file\}"),
        ({"mine": "not a table"}, r"^agents\.mine: must be a table"),
    ],
)
def test_resolve_profiles_errors(user: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_profiles(user)  # type: ignore[arg-type]


def test_file_prompt_requires_placeholder() -> None:
    with pytest.raises(ValidationError, match=r"\{prompt_file\}"):
        AgentProfile(command=["aider", "--message-file", "prompt.md"], prompt="file")
    profile = AgentProfile(command=["aider", "--message-file={prompt_file}"], prompt="file")
    assert profile.prompt == "file"
    assert AgentProfile(command=["cat"]).prompt == "stdin"  # stdin needs no placeholder


def test_render_argv() -> None:
    profile = AgentProfile(command=["agent", "--file={prompt_file}", "{prompt_file}", "-x"], prompt="file")
    path = Path("/work dir/prompt; rm -rf.md")
    argv = render_argv(profile, path)
    assert argv == ["agent", f"--file={path}", str(path), "-x"]  # spaces and ; stay inside one element
    argv.append("mutated")
    assert profile.command == ["agent", "--file={prompt_file}", "{prompt_file}", "-x"]
    stdin_profile = BUILTIN_PROFILES["claude"]
    assert render_argv(stdin_profile, path) == stdin_profile.command


def test_render_argv_git_dirs_of_a_linked_worktree(git_repo: Path, tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    git(git_repo, "worktree", "add", "-q", "-b", "swarm/t", str(worktree))
    argv = render_argv(BUILTIN_PROFILES["codex"], Path("/p.md"), worktree)
    dirs = [argv[i + 1] for i, part in enumerate(argv) if part == "--add-dir"]
    common = (git_repo / ".git").resolve()
    assert dirs == [str(common / "worktrees" / "wt"), f"{common}/objects", f"{common}/refs", f"{common}/logs"]
    assert git(worktree, "rev-parse", "--absolute-git-dir") == dirs[0]
    plain = render_argv(AgentProfile(command=["x", "{git_dir}", "{git_common_dir}"]), Path("/p.md"), git_repo)
    assert plain == ["x", str(git_repo / ".git"), str(git_repo / ".git")]


# ------------------------------------------------------------------------------- profiles that can commit


@pytest.mark.parametrize(("command", "flagged"), [
    (BUILTIN_PROFILES["codex"].command, ""),
    (["codex", "exec", "--json", "--sandbox", "workspace-write", "-"], "keeps the worktree's git directory read-only"),
    (["codex", "exec", "--json", "-"], "sandbox 'read-only' cannot write"),
    (["codex", "exec", "--json", "--full-auto", "-"], "keeps the worktree's git directory read-only"),
    (["codex", "exec", "--json", "--sandbox", "danger-full-access", "-"], ""),
    (["codex", "exec", "--dangerously-bypass-approvals-and-sandbox", "-"], ""),
    (["codex", "exec", "-s", "workspace-write", "-c", 'sandbox_workspace_write.writable_roots=["{git_dir}", '
      '"{git_common_dir}/objects", "{git_common_dir}/refs", "{git_common_dir}/logs"]', "-"], ""),
    (["claude", "-p"], ""),
])
def test_commit_problem(command: list[str], flagged: str) -> None:
    problem = commit_problem(AgentProfile(command=command, parser="codex" if command[0] == "codex" else "claude"))
    if flagged:
        assert flagged in problem
        assert "drop `command` from the profile" in problem and "--add-dir {git_dir}" in problem
    else:
        assert problem == ""


def test_claude_failed_tool_call_is_counted_with_its_output(fixtures_dir: Path) -> None:
    report = _claude(fixtures_dir, "failing-cmd-stream-json.jsonl", 0)
    assert not report.is_error  # exit 0, subtype success: only the tool result says it failed
    assert report.failed_commands == 1
    assert report.failed_command == (
        "$ echo 'ModuleNotFoundError: No module named greet_helpers' >&2; exit 3\n"
        "Exit code 3\nModuleNotFoundError: No module named greet_helpers")
    assert _claude(fixtures_dir, "success-stream-json.jsonl", 0).failed_commands == 0
