"""swarm.toml: the defaults of the contract, the documented example, durations, and one-line errors that
name the file and the dotted key."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from monitor.sockets import per_repo_socket
from orchestrator.config import ConfigError, Settings, load

# The `swarm.toml` block of ARCHITECTURE.md, verbatim.
ARCHITECTURE_EXAMPLE = """\
[project]
base_branch = "main"
forge = "local"                 # "github" | "local"
setup = "pip install -e ."      # run once in every new worktree (optional)

[agents.claude]                 # profiles; built-ins exist for claude, codex, aider, gemini
command = ["claude", "-p", "--output-format", "stream-json", "--verbose", "--dangerously-skip-permissions"]
prompt = "stdin"                # or "file": the command gets {prompt_file}
env = { IS_SANDBOX = "1" }      # extra environment for the agent (never secrets of swarm's own)
[routing]                       # task kind -> profile
default = "claude"

[monitor]
interval = "5m"
max_attempts = 3
stuck_after = "20m"
attempt_timeout = "2h"
max_parallel = 4
tmux_socket = "swarm"           # the agents' dedicated tmux server (tmux -L swarm)

[done]
reviews = 1
reviewers = ["coderabbitai[bot]"]
screenshots_for = ["web/**", "*.css", "*.tsx"]

[local]
ci = "make test"

[github]
repo = "owner/name"
api_url = "https://api.github.com"   # GitHub Enterprise: https://HOST/api/v3
token_env = "GITHUB_TOKEN"

[slack]
token_env = "SLACK_BOT_TOKEN"
channel = "#agents"
api_url = "https://slack.com/api/"
webhook_url_env = "SLACK_WEBHOOK_URL"   # alternative to a bot token (no threads)

[sentry]
url = "https://sentry.io"
org = "acme"
project = "web"
token_env = "SENTRY_AUTH_TOKEN"
dsn_env = "SENTRY_DSN"          # the daemon's own errors and cron check-ins

[llm]
model = "claude-sonnet-4-5"
api_key_env = "ANTHROPIC_API_KEY"   # base URL from ANTHROPIC_BASE_URL, as the SDK does

[context]
paths = ["docs/context"]
"""

# The one change needed for the example to load with forge = "local": a local command for the reviewer that
# done.reviewers names (the local forge has no coderabbit; done.reviews = 1 needs a reviewer that can approve).
LOCAL_REVIEWER = 'reviewers = { "coderabbitai[bot]" = "scripts/review.sh" }'
ADJUSTED_EXAMPLE = ARCHITECTURE_EXAMPLE.replace('ci = "make test"\n', f'ci = "make test"\n{LOCAL_REVIEWER}\n')


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "swarm.toml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def config_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"
    assert str(path) in message
    return message


# -- defaults -------------------------------------------------------------------------------------------


def test_empty_file_gives_the_contract_defaults(tmp_path: Path) -> None:
    settings = load(write(tmp_path, ""))
    assert settings.monitor.interval == 300.0
    assert settings.monitor.max_attempts == 3
    assert settings.monitor.stuck_after == 1200.0
    assert settings.monitor.attempt_timeout == 7200.0
    assert settings.monitor.max_parallel == 4
    assert settings.monitor.tmux_socket == per_repo_socket(tmp_path.resolve())  # one server per repository
    assert settings.project.base_branch == "main"
    assert settings.project.forge == "local"
    assert settings.routing == {"default": "claude"}
    assert settings.agents == {}
    assert settings.done.reviews == 0
    assert settings.done.commits and settings.done.pr and settings.done.ci and settings.done.no_conflict
    assert settings.model_copy(update={"monitor": Settings().monitor}) == Settings()


def test_routing_without_default_gets_the_default_route(tmp_path: Path) -> None:
    settings = load(write(tmp_path, '[routing]\nfrontend = "codex"\n'))
    assert settings.routing == {"frontend": "codex", "default": "claude"}


def test_secret_env_names_never_come_from_values(tmp_path: Path) -> None:
    settings = load(write(tmp_path, '[github]\ntoken_env = "MY_GH"\n[slack]\ntoken_env = "MY_SLACK"\n'))
    names = settings.secret_env_names()
    assert {"MY_GH", "MY_SLACK", "SLACK_WEBHOOK_URL", "SENTRY_AUTH_TOKEN", "SENTRY_DSN", "GH_TOKEN"} <= set(names)
    assert "GITHUB_TOKEN" not in names


# -- the documented example -----------------------------------------------------------------------------


def test_architecture_example_verbatim_is_rejected_for_its_reviews(tmp_path: Path) -> None:
    """As written, the example asks the local forge for 1 approval with no local reviewer: the loader says so."""
    message = config_error(tmp_path, ARCHITECTURE_EXAMPLE)
    assert "done.reviews" in message
    assert "only 0 of the reviewers can run on the local forge" in message


def test_architecture_example_with_a_local_reviewer_parses(tmp_path: Path) -> None:
    assert ADJUSTED_EXAMPLE.count(LOCAL_REVIEWER) == 1
    settings = load(write(tmp_path, ADJUSTED_EXAMPLE))
    assert settings.project.base_branch == "main"
    assert settings.project.forge == "local"
    assert settings.project.setup == "pip install -e ."
    assert settings.agents["claude"]["command"][:2] == ["claude", "-p"]
    assert settings.agents["claude"]["env"] == {"IS_SANDBOX": "1"}
    assert settings.routing == {"default": "claude"}
    assert settings.monitor.interval == 300.0
    assert settings.monitor.stuck_after == 1200.0
    assert settings.monitor.attempt_timeout == 7200.0
    assert settings.done.reviews == 1
    assert settings.done.reviewers == ["coderabbitai[bot]"]
    assert settings.done.screenshots_for == ["web/**", "*.css", "*.tsx"]
    assert settings.local.ci == "make test"
    assert settings.local.reviewers == {"coderabbitai[bot]": "scripts/review.sh"}
    assert settings.github.repo == "owner/name"
    assert settings.slack.channel == "#agents"
    assert settings.sentry.org == "acme"
    assert settings.llm.model == "claude-sonnet-4-5"
    assert settings.context.paths == ["docs/context"]


def test_architecture_example_with_the_github_forge_parses(tmp_path: Path) -> None:
    settings = load(write(tmp_path, ARCHITECTURE_EXAMPLE.replace('forge = "local"', 'forge = "github"')))
    assert settings.project.forge == "github"
    assert settings.done.reviews == 1


def test_local_reviews_must_be_reachable(tmp_path: Path) -> None:
    message = config_error(tmp_path, """\
        [done]
        reviews = 1
        reviewers = ["coderabbitai[bot]"]
        [local]
        reviewers = { claude-review = "scripts/review.sh" }
        """)
    assert "done.review" in message


# -- durations ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [('"90s"', 90.0), ('"20m"', 1200.0), ('"2h"', 7200.0), ('"1h30m"', 5400.0), ('"1d"', 86400.0),
     ('"1.5h"', 5400.0), ("45", 45.0), ("2.5", 2.5), ("0", 0.0)],
)
def test_durations(tmp_path: Path, value: str, seconds: float) -> None:
    settings = load(write(tmp_path, f"[cleanup]\nevery = {value}\narchive_after = {value}\n"
                                    f"[project]\nsetup_timeout = {value}\n[local]\nci_timeout = {value}\n"))
    assert settings.cleanup.every == seconds
    assert settings.cleanup.archive_after == seconds
    assert settings.project.setup_timeout == seconds
    assert settings.local.ci_timeout == seconds


@pytest.mark.parametrize("value", ['"20x"', '"m20"', '""', '"-5m"', "-5", "true", '"1h 30"', '"20 minutes"'])
def test_bad_durations(tmp_path: Path, value: str) -> None:
    message = config_error(tmp_path, f"[monitor]\nattempt_timeout = {value}\n")
    assert "monitor.attempt_timeout" in message


# -- unknown keys and bad values ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("bogus = 1\n", "bogus"),
        ("[monitor]\nstuck_afterr = \"20m\"\n", "monitor.stuck_afterr"),
        ("[project]\nbase_brnach = \"main\"\n", "project.base_brnach"),
        ("[done]\nscreenshot_for = []\n", "done.screenshot_for"),
        ("[github]\ntoken = \"ghp_x\"\n", "github.token"),
        ("[slack.extra]\nx = 1\n", "slack.extra"),
    ],
)
def test_unknown_keys(tmp_path: Path, text: str, key: str) -> None:
    message = config_error(tmp_path, text)
    assert f": {key}: " in message
    assert "unknown key" in message


def test_several_errors_are_counted_on_the_same_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[monitor]\nstuck_afterr = 1\nmax_attempts = 0\n")
    assert re.search(r"\(and 1 more\)$", message)


@pytest.mark.parametrize(
    ("text", "key", "words"),
    [
        ("[monitor]\nmax_attempts = 0\n", "monitor.max_attempts", "greater than or equal to 1"),
        ("[monitor]\nmax_attempts = \"three\"\n", "monitor.max_attempts", "integer"),
        ("[monitor]\nmax_parallel = 0\n", "monitor.max_parallel", "greater than or equal to 1"),
        ("[monitor]\nstuck_after = \"20x\"\n", "monitor.stuck_after", "bad duration '20x'"),
        ("[project]\nforge = \"gitlab\"\n", "project.forge", "'local' or 'github'"),
        ("[done]\nreviews = -1\n", "done.reviews", "greater than or equal to 0"),
        ("[done]\nreviewers = \"bot\"\n", "done.reviewers", "list"),
        ("[monitor]\ninterval = \"1h\\n30m\"\n", "monitor.interval", "bad duration"),
    ],
)
def test_bad_values(tmp_path: Path, text: str, key: str, words: str) -> None:
    message = config_error(tmp_path, text)
    assert f": {key}: " in message
    assert words in message


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    message = config_error(tmp_path, "[monitor\nmax_attempts = 3\n")
    assert "not valid TOML" in message
    assert "line 1" in message


def test_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "swarm.toml"
    with pytest.raises(ConfigError) as info:
        load(path)
    assert str(path) in str(info.value)
    assert "swarm init" in str(info.value)
    assert "\n" not in str(info.value)


# -- agents and routing ---------------------------------------------------------------------------------


def test_routing_to_an_unknown_profile(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[routing]\ndefault = "claude"\nfrontend = "cursor"\n')
    assert ": routing.frontend: " in message
    assert "'cursor'" in message
    assert "claude" in message  # lists the known profiles


def test_routing_default_to_an_unknown_profile(tmp_path: Path) -> None:
    assert ": routing.default: " in config_error(tmp_path, '[routing]\ndefault = "nobody"\n')


def test_a_new_profile_needs_a_command(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[agents.mine]\nprompt = "stdin"\n')
    assert ": agents.mine: " in message
    assert "command" in message


def test_a_new_profile_with_a_command_can_be_routed_to(tmp_path: Path) -> None:
    settings = load(write(tmp_path, '[agents.mine]\ncommand = ["my-agent", "--yes"]\n[routing]\ndefault = "mine"\n'))
    assert settings.routing["default"] == "mine"
    assert settings.agents["mine"]["command"] == ["my-agent", "--yes"]


def test_a_builtin_profile_can_be_partly_overridden(tmp_path: Path) -> None:
    settings = load(write(tmp_path, '[agents.codex]\nenv = { FOO = "1" }\n[routing]\ndefault = "codex"\n'))
    assert settings.agents["codex"] == {"env": {"FOO": "1"}}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[agents.mine]\ncommand = []\n", "agents.mine"),
        ('[agents.mine]\ncommand = ["x"]\nprompt = "file"\n', "agents.mine"),
        ('[agents.mine]\ncommand = ["x"]\nsurprise = 1\n', "agents.mine"),
        ("[agents]\nmine = 1\n", "agents.mine"),
    ],
)
def test_bad_profiles_name_the_profile(tmp_path: Path, text: str, key: str) -> None:
    assert f": {key}" in config_error(tmp_path, text)


def test_error_stays_on_one_line_for_a_key_with_a_newline(tmp_path: Path) -> None:
    config_error(tmp_path, '[monitor]\n"stuck\\nafter" = "20m"\n')
