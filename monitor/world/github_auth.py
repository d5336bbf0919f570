"""Authenticating as a GitHub App installation: a token of its own budget, refreshed before it expires.

Why: a personal token shares one budget (5,000 requests an hour) with everything else its owner runs. An
App installation has its own, which grows with the organisation, and it can be limited to one repository.
The JWT is signed by PyGithub's :class:`github.Auth.AppAuth` (RS256, ``iss`` = the app id, ``exp`` five
minutes ahead); the installation token comes from ``POST /app/installations/{id}/access_tokens`` through
PyGithub's :class:`github.GithubIntegration`. One :class:`InstallationTokens` hands the current token to
REST (PyGithub, through :class:`InstallationAuth`), GraphQL (httpx) and git pushes (GIT_ASKPASS reads it
from the push's environment), and mints a new one when less than a margin of its life is left, so that a
long tick or a push never starts with a token about to die.

The private key is a secret: it comes from an environment variable or a file that only its owner may read,
is kept in memory only, and never reaches argv, logs, ``.swarm/`` or an agent.
"""

from __future__ import annotations

import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from github import Auth, GithubException, GithubIntegration

from monitor.redact import redact
from monitor.world.forge import ForgeUnavailable

REFRESH_MARGIN = 300.0
"""A token is replaced when less than this many seconds of it are left (or half its life, if shorter)."""


class AppKeyError(ValueError):
    """The App's private key cannot be read: one line naming what was wrong and how to fix it."""


def read_private_key(env_name: str, file: str, environ: dict[str, str] | None = None,
                     base: Path | None = None) -> str:
    """The PEM private key, from the variable ``env_name`` or the file ``file`` (relative to ``base``). A
    file any user of the machine may read is refused: the key would not be a secret any more."""
    import os

    env = os.environ if environ is None else environ
    if env_name:
        value = env.get(env_name, "").strip()
        if value:
            return value.replace("\\n", "\n") if "\\n" in value and "\n" not in value else value
        if not file:
            raise AppKeyError(f"no GitHub App private key in ${env_name} (github.private_key_env); export the PEM "
                              "file's content, or set github.private_key_file")
    if not file:
        raise AppKeyError("github.app_id is set but neither github.private_key_env nor github.private_key_file is")
    path = Path(file).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    try:
        mode = path.stat().st_mode
        if mode & stat.S_IROTH:
            raise AppKeyError(f"github.private_key_file: {path} is readable by every user of this machine; "
                              f"run `chmod 600 {path}`")
        text = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise AppKeyError(f"github.private_key_file: cannot read {path} ({exc.strerror or type(exc).__name__})") \
            from None
    if "PRIVATE KEY" not in text:
        raise AppKeyError(f"github.private_key_file: {path} is not a PEM private key (download one from the App's "
                          "settings page)")
    return text


@dataclass(frozen=True)
class AppCredentials:
    app_id: str
    installation_id: int
    private_key: str = field(repr=False)

    def __repr__(self) -> str:  # never print the key
        return f"AppCredentials(app_id={self.app_id!r}, installation_id={self.installation_id})"


class InstallationTokens:
    """The current installation token of one App installation, minted on first use and again before it
    expires; safe to use from the threads of one tick."""

    def __init__(self, credentials: AppCredentials, api_url: str, timeout: float = 15.0,
                 clock: Callable[[], float] = time.time, margin: float = REFRESH_MARGIN) -> None:
        self.credentials = credentials
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.clock = clock
        self.margin = margin
        self.minted = 0
        self.permissions: dict[str, str] = {}
        self._lock = threading.Lock()
        self._token = ""
        self._refresh_at = 0.0
        self._integration: GithubIntegration | None = None

    def __repr__(self) -> str:
        return f"InstallationTokens({self.credentials!r})"

    def integration(self) -> GithubIntegration:
        """PyGithub's client authenticated as the App itself (a fresh JWT on every request)."""
        if self._integration is None:
            auth = Auth.AppAuth(self.credentials.app_id, self.credentials.private_key)
            self._integration = GithubIntegration(
                auth=auth, base_url=self.api_url, timeout=max(1, round(self.timeout)), retry=2,
                user_agent="swarm-monitor", lazy=True,
            )
        return self._integration

    def token(self) -> str:
        """The installation token, minted again when less than the margin of its life is left."""
        with self._lock:
            if not self._token or self.clock() >= self._refresh_at:
                self._mint()
            return self._token

    def invalidate(self) -> None:
        """GitHub refused the token (revoked, a clock skew): the next use mints a new one."""
        with self._lock:
            self._token, self._refresh_at = "", 0.0

    def _mint(self) -> None:
        installation = self.credentials.installation_id
        try:
            grant = self.integration().get_access_token(installation)
        except GithubException as exc:
            raise ForgeUnavailable(self._refusal(exc.status)) from None
        except (OSError, ValueError) as exc:  # requests' errors are OSErrors; a key PyJWT cannot read
            raise ForgeUnavailable(f"GitHub App token for installation {installation}: {type(exc).__name__}: "
                                   f"{redact(str(exc))[:200]}") from None
        now = self.clock()
        expires = grant.expires_at.timestamp() if grant.expires_at else now + 3600.0
        life = max(0.0, expires - now)
        self._token = grant.token
        self._refresh_at = expires - min(self.margin, life / 2)
        self.permissions = dict(grant.permissions or {})
        self.minted += 1

    def _refusal(self, status: int) -> str:
        app, installation = self.credentials.app_id, self.credentials.installation_id
        if status == 401:
            return (f"GitHub refused the JWT of App {app} (401): check github.app_id and that the private key is "
                    "the App's current one")
        if status == 404:
            return (f"GitHub App {app} has no installation {installation} (404): check github.installation_id "
                    "(the number at the end of the installation's settings URL)")
        return f"GitHub App token for installation {installation}: GitHub answered {status}"


class InstallationAuth(Auth.Auth):
    """PyGithub authentication with the current installation token, read afresh for every request."""

    def __init__(self, tokens: InstallationTokens) -> None:
        self.tokens = tokens

    @property
    def token_type(self) -> str:
        return "token"

    @property
    def token(self) -> str:
        return self.tokens.token()

    @property
    def _masked_token(self) -> str:
        return "token (installation token removed)"
