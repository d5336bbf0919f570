"""The real Claude Code CLI for end-to-end tests: installed from npm into a cache, run against a fake API.

Why: the monitor must be tested against what a real agent really does, not only against recordings. This
module installs the npm package ``@anthropic-ai/claude-code`` (pinned) once into a git-ignored cache and
builds the environment that points the CLI at a local :class:`tests.fakes.messages_api.ScriptedMessagesServer`.

What was found about the package (2.1.330): it is a thin wrapper whose ``postinstall`` (``install.cjs``)
copies a native binary from a platform package that npm installs as an optional dependency
(``@anthropic-ai/claude-code-linux-x64`` and siblings, all on the npm registry) over ``bin/claude.exe``.
Nothing is downloaded from anywhere but the registry, so the install works with only npm reachable; if
optional dependencies are omitted the placeholder stays and the CLI cannot run, hence
``--include=optional`` and the ``--version`` check after installing. The install is about 370 MB on disk.

Running it (see ``tests/fixtures/claude-code/README.md``): ``claude -p --output-format stream-json --verbose
--dangerously-skip-permissions`` with the prompt on stdin and the environment from :func:`claude_env`
(``IS_SANDBOX=1`` lets ``--dangerously-skip-permissions`` run as root). In print mode (``-p``) the CLI needs
no configuration. Interactive mode (e.g. in tmux) first runs an onboarding that checks connectivity to the
real API host itself, ignoring ``ANTHROPIC_BASE_URL``, and fails without network ("Unable to connect to
Anthropic services"); :func:`write_claude_config` pre-seeds ``~/.claude.json`` so that it is skipped.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

from tests.fakes.npm import NpmInstallError, locked, npm_install

PACKAGE = "@anthropic-ai/claude-code"
VERSION = "2.1.330"
"""The pinned version (the newest on npm when this was written; the recordings were made with 2.1.x)."""

DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "claude-code"
"""Where the suite installs the CLI: ``.cache/claude-code`` at the repository root (git-ignored)."""

FAKE_API_KEY = "sk-test"

_INSTALL_TIMEOUT = 900  # seconds; a cold install downloads ~75 MB from the registry
_ENV_PREFIXES_DROPPED = ("ANTHROPIC_", "CLAUDE", "AWS_BEARER_TOKEN_BEDROCK")


class ClaudeCliInstallError(RuntimeError):
    """npm could not install the pinned Claude Code CLI, or the installed CLI does not run."""


def claude_executable(cache_dir: Path) -> Path:
    """Where ``ensure_claude_cli`` puts the ``claude`` executable under ``cache_dir``."""
    return cache_dir / "node_modules" / ".bin" / "claude"


def _marker(cache_dir: Path) -> Path:
    return cache_dir / f".installed-{VERSION}"


def _installed_version(cache_dir: Path) -> str | None:
    manifest = cache_dir / "node_modules" / "@anthropic-ai" / "claude-code" / "package.json"
    try:
        version = json.loads(manifest.read_text()).get("version")
    except (OSError, ValueError):
        return None
    return version if isinstance(version, str) else None


def _is_installed(cache_dir: Path) -> bool:
    return (
        _marker(cache_dir).is_file()
        and _installed_version(cache_dir) == VERSION
        and os.access(claude_executable(cache_dir), os.X_OK)
    )


def ensure_claude_cli(cache_dir: Path = DEFAULT_CACHE) -> Path | None:
    """Install the pinned Claude Code CLI into ``cache_dir`` unless it is there; return its ``claude``.

    Returns None when ``npm`` is not on PATH. Raises :class:`ClaudeCliInstallError` when npm fails or the
    installed CLI does not report the pinned version.
    """
    npm = shutil.which("npm")
    if npm is None:
        return None
    cache_dir = cache_dir.resolve()
    if _is_installed(cache_dir):
        return claude_executable(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with locked(cache_dir):
        if _is_installed(cache_dir):  # another process installed it while we waited
            return claude_executable(cache_dir)
        _marker(cache_dir).unlink(missing_ok=True)
        try:
            npm_install(npm, cache_dir, f"{PACKAGE}@{VERSION}", ["--include=optional"], _INSTALL_TIMEOUT)
        except NpmInstallError as exc:
            raise ClaudeCliInstallError(str(exc)) from exc
        claude = claude_executable(cache_dir)
        _check_runs(claude)
        _marker(cache_dir).write_text(f"{PACKAGE}@{VERSION}\n")
        return claude


def _check_runs(claude: Path) -> None:
    """The native binary is in place: ``claude --version`` names the pinned version."""
    if not claude.exists():
        raise ClaudeCliInstallError(f"npm install succeeded but {claude} does not exist")
    with tempfile.TemporaryDirectory(prefix="claude-home-") as home:
        try:
            done = subprocess.run(
                [str(claude), "--version"],
                env=claude_env("http://127.0.0.1:9", Path(home)),
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ClaudeCliInstallError(f"{claude} --version did not run: {exc}") from exc
    if done.returncode != 0 or VERSION not in done.stdout:
        raise ClaudeCliInstallError(
            f"{claude} --version exited {done.returncode} without naming {VERSION} (was the native "
            f"platform package, an optional dependency, left out?):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
        )


def claude_env(
    base_url: str,
    home: Path,
    *,
    base: Mapping[str, str] | None = None,
    api_key: str = FAKE_API_KEY,
) -> dict[str, str]:
    """The environment to run the CLI against a fake API at ``base_url`` with ``HOME=home``.

    Starts from ``base`` (default: ``os.environ``, so PATH and the git identity come along) without any
    inherited ``ANTHROPIC_*`` / ``CLAUDE*`` variable (a suite run from inside Claude Code would otherwise
    hand the child a real token or a nested-session marker), then adds the variables of the recorded
    invocation.
    """
    env = {
        name: value
        for name, value in (os.environ if base is None else base).items()
        if not name.upper().startswith(_ENV_PREFIXES_DROPPED)
    }
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost"]))
    env.update(
        {
            "HOME": str(home),
            "IS_SANDBOX": "1",
            "ANTHROPIC_BASE_URL": base_url,
            "ANTHROPIC_API_KEY": api_key,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
            "DISABLE_AUTOUPDATER": "1",
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
    )
    return env


def write_claude_config(home: Path, trusted: Iterable[Path] = (), *, api_key: str = FAKE_API_KEY) -> Path:
    """Pre-seed ``home/.claude.json`` so that *interactive* ``claude`` starts straight at its prompt.

    Skips the first-run onboarding (which checks connectivity to the real API host and fails offline),
    the bypass-permissions warning, the "use this API key?" question and the folder-trust dialog for each
    directory in ``trusted``. Print mode (``-p``) needs none of it.
    """
    config = {
        "hasCompletedOnboarding": True,
        "theme": "dark",
        "bypassPermissionsModeAccepted": True,
        "customApiKeyResponses": {"approved": [api_key[-20:]], "rejected": []},
        "projects": {
            str(path.resolve()): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}
            for path in trusted
        },
    }
    home.mkdir(parents=True, exist_ok=True)
    target = home / ".claude.json"
    target.write_text(json.dumps(config, indent=2))
    return target


__all__ = [
    "DEFAULT_CACHE",
    "FAKE_API_KEY",
    "PACKAGE",
    "VERSION",
    "ClaudeCliInstallError",
    "claude_env",
    "claude_executable",
    "ensure_claude_cli",
    "write_claude_config",
]
