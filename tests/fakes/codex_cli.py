"""The real Codex CLI for end-to-end tests: installed from npm into a cache, run against a fake Responses API.

Why: the built-in ``codex`` profile must be proven to commit with the real CLI and its real sandbox, not only
against recordings. This installs the npm package ``@openai/codex`` (pinned) once into a git-ignored cache
(``.cache/codex``) and builds the arguments and environment that point the CLI at a local
:class:`tests.fakes.responses_api.ScriptedResponsesServer` (a custom model provider).

What was found about the package (0.171.0): like Claude Code's, it is a thin Node wrapper whose native binary
comes in a platform package installed as an optional dependency (``@openai/codex-linux-x64`` is an alias of
``@openai/codex@<version>-linux-x64``), all from the npm registry; hence ``--include=optional`` and the
``--version`` check. About 420 MB on disk. Offline it needs no login: an ``env_key`` provider reads its key
from the environment. Its Linux sandbox (``--sandbox workspace-write``) works in this container.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tests.fakes.npm import NpmInstallError, locked, npm_install

PACKAGE = "@openai/codex"
VERSION = "0.171.0"
"""The pinned version (the newest on npm when this was written; the recordings were made with 0.169/0.171)."""

DEFAULT_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "codex"
FAKE_API_KEY = "sk-test"
MODEL = "gpt-5"
PROVIDER = "local"

_INSTALL_TIMEOUT = 900
_ENV_PREFIXES_DROPPED = ("OPENAI_", "CODEX_")


class CodexCliInstallError(RuntimeError):
    """npm could not install the pinned Codex CLI, or the installed CLI does not run."""


def codex_executable(cache_dir: Path) -> Path:
    return cache_dir / "node_modules" / ".bin" / "codex"


def _marker(cache_dir: Path) -> Path:
    return cache_dir / f".installed-{VERSION}"


def _installed_version(cache_dir: Path) -> str | None:
    try:
        version = json.loads((cache_dir / "node_modules" / "@openai" / "codex" / "package.json").read_text())
    except (OSError, ValueError):
        return None
    value = version.get("version") if isinstance(version, dict) else None
    return value if isinstance(value, str) else None


def _is_installed(cache_dir: Path) -> bool:
    return (_marker(cache_dir).is_file() and _installed_version(cache_dir) == VERSION
            and os.access(codex_executable(cache_dir), os.X_OK))


def ensure_codex_cli(cache_dir: Path = DEFAULT_CACHE) -> Path | None:
    """Install the pinned Codex CLI into ``cache_dir`` unless it is there; return its ``codex``.

    None when ``npm`` is not on PATH; :class:`CodexCliInstallError` when npm fails or the CLI does not run.
    """
    npm = shutil.which("npm")
    if npm is None:
        return None
    cache_dir = cache_dir.resolve()
    if _is_installed(cache_dir):
        return codex_executable(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    with locked(cache_dir):
        if _is_installed(cache_dir):
            return codex_executable(cache_dir)
        _marker(cache_dir).unlink(missing_ok=True)
        try:
            npm_install(npm, cache_dir, f"{PACKAGE}@{VERSION}", ["--include=optional"], _INSTALL_TIMEOUT)
        except NpmInstallError as exc:
            raise CodexCliInstallError(str(exc)) from exc
        codex = codex_executable(cache_dir)
        _check_runs(codex)
        _marker(cache_dir).write_text(f"{PACKAGE}@{VERSION}\n")
        return codex


def _check_runs(codex: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="codex-home-") as home:
        try:
            done = subprocess.run([str(codex), "--version"], env=codex_env(Path(home)), capture_output=True,
                                  text=True, timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CodexCliInstallError(f"{codex} --version did not run: {exc}") from exc
    if done.returncode != 0 or VERSION not in done.stdout:
        raise CodexCliInstallError(
            f"{codex} --version exited {done.returncode} without naming {VERSION} (was the native platform "
            f"package, an optional dependency, left out?):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")


def provider_args(base_url: str, model: str = MODEL) -> list[str]:
    """The ``-c`` overrides that make ``codex exec`` talk to the Responses API at ``base_url`` (with /v1)."""
    table = f'{{name="{PROVIDER}",base_url="{base_url}",env_key="OPENAI_API_KEY",wire_api="responses"}}'
    return ["-c", f'model_provider="{PROVIDER}"', "-c", f"model_providers.{PROVIDER}={table}", "-m", model]


def codex_env(home: Path, *, base: Mapping[str, str] | None = None, api_key: str = FAKE_API_KEY) -> dict[str, str]:
    """The environment to run the CLI offline with ``HOME=home`` (its ``~/.codex`` goes there) and no inherited
    ``OPENAI_*`` / ``CODEX_*`` variable."""
    env = {name: value for name, value in (os.environ if base is None else base).items()
           if not name.upper().startswith(_ENV_PREFIXES_DROPPED)}
    no_proxy = ",".join(filter(None, [env.get("NO_PROXY") or env.get("no_proxy"), "127.0.0.1,localhost"]))
    env.update({"HOME": str(home), "OPENAI_API_KEY": api_key, "NO_PROXY": no_proxy, "no_proxy": no_proxy})
    return env


__all__ = [
    "DEFAULT_CACHE",
    "FAKE_API_KEY",
    "MODEL",
    "PACKAGE",
    "VERSION",
    "CodexCliInstallError",
    "codex_env",
    "codex_executable",
    "ensure_codex_cli",
    "provider_args",
]
