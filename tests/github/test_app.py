"""Authenticating as a GitHub App against the fake GitHub: a JWT signed by a key generated here (RS256, ``iss``
the app id, ``exp`` within 10 minutes) buys an installation token that REST (PyGithub), GraphQL (httpx) and
git use; it is replaced before it expires, a call after its expiry still works, a wrong key or installation
is one line, and a whole tick runs with no personal token at all."""

from __future__ import annotations

import os
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from monitor.world.forge import ForgeUnavailable
from monitor.world.github_api import GitHubApi, GitHubConfig
from monitor.world.github_auth import AppCredentials, AppKeyError, InstallationTokens, read_private_key
from monitor.world.github_query import OPEN_PULLS
from orchestrator.config import ConfigError, Settings, parse
from tests.conftest import git
from tests.fakes.github_server import FakeGitHub
from tests.github.test_scenarios import SWARM, Stage, is_status, stage_for
from tests.waiting import wait_for

APP_ID = 424242
INSTALLATION = 9001


def new_key() -> tuple[str, str]:
    """A fresh RSA key pair: (private PEM, public PEM)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def keys() -> tuple[str, str]:
    return new_key()


@pytest.fixture
def fake(git_repo: Path) -> Iterator[FakeGitHub]:
    bare = git_repo.parent / "remote.git"
    git(git_repo.parent, "clone", "-q", "--bare", str(git_repo), str(bare))
    with FakeGitHub(token="ghp_" + "personal" * 5) as server:
        server.add_repo("acme", "shop", bare)
        yield server


def app_api(fake: FakeGitHub, tmp_path: Path, private: str, installation: int = INSTALLATION) -> GitHubApi:
    tokens = InstallationTokens(AppCredentials(str(APP_ID), installation, private), fake.url, timeout=5)
    config = GitHubConfig(repo="acme/shop", api_url=fake.url, token="", state_path=tmp_path / "github.json",
                          timeout=5)
    return GitHubApi(config, app=tokens)


def test_an_installation_token_serves_rest_and_graphql_and_is_minted_once(
        fake: FakeGitHub, tmp_path: Path, keys: tuple[str, str]) -> None:
    private, public = keys
    fake.add_app(APP_ID, public, INSTALLATION)
    api = app_api(fake, tmp_path, private)
    assert api.rest("get repo", lambda r: r.default_branch) == "main"
    data = api.graphql(OPEN_PULLS, {"owner": "acme", "name": "shop", "cursor": None})
    assert data["repository"]["pullRequests"]["nodes"] == []
    assert api.job_log(1) == ""  # no such job: 404, still authenticated
    assert len(fake.tokens_minted) == 1 and fake.refused_tokens == []
    assert api.token() == fake.tokens_minted[0] and api.token().startswith("ghs_")
    assert api.app is not None and api.app.permissions["contents"] == "write"
    minted = [r for r in fake.requests if r.path == f"/app/installations/{INSTALLATION}/access_tokens"]
    assert [r.status for r in minted] == [201]
    assert all(r.status != 401 for r in fake.requests)
    assert private not in repr(api.app) and private not in repr(api.app.credentials)


def test_a_token_is_replaced_before_it_expires_and_a_call_after_its_expiry_works(
        fake: FakeGitHub, tmp_path: Path, keys: tuple[str, str]) -> None:
    private, public = keys
    fake.add_app(APP_ID, public, INSTALLATION, token_ttl=4.0)  # GitHub's last an hour; these four seconds
    api = app_api(fake, tmp_path, private)
    api.rest("get repo", lambda r: r.default_branch)
    first = fake.tokens_minted[0]
    api.graphql(OPEN_PULLS, {"owner": "acme", "name": "shop", "cursor": None})
    assert fake.tokens_minted == [first]  # still young: reused
    expiry = time.time() + 4.0
    wait_for(lambda: time.time() > expiry, "the first token to expire at the fake")
    assert api.rest("get repo", lambda r: r.default_branch) == "main"
    api.graphql(OPEN_PULLS, {"owner": "acme", "name": "shop", "cursor": None})
    assert len(fake.tokens_minted) >= 2 and api.token() != first
    assert fake.refused_tokens == []  # replaced before it died: GitHub never saw an expired token
    assert all(r.status != 401 for r in fake.requests)
    # the git environment of a push carries the current token, read when the push starts
    from monitor.world.github_api import askpass_env

    env = askpass_env(tmp_path / "state", api.token())
    assert env["SWARM_GIT_TOKEN"] == fake.tokens_minted[-1]
    assert fake.tokens_minted[-1] not in (tmp_path / "state" / "git-askpass").read_text()


def test_a_revoked_token_is_dropped_and_the_next_call_mints_another(
        fake: FakeGitHub, tmp_path: Path, keys: tuple[str, str]) -> None:
    private, public = keys
    fake.add_app(APP_ID, public, INSTALLATION)
    api = app_api(fake, tmp_path, private)
    api.graphql(OPEN_PULLS, {"owner": "acme", "name": "shop", "cursor": None})
    fake.revoke_installation_tokens()
    with pytest.raises(ForgeUnavailable, match="rejected the App installation token"):
        api.graphql(OPEN_PULLS, {"owner": "acme", "name": "shop", "cursor": None})
    api.graphql(OPEN_PULLS, {"owner": "acme", "name": "shop", "cursor": None})
    assert len(fake.tokens_minted) == 2


def test_a_jwt_from_another_key_or_a_wrong_installation_is_one_line(
        fake: FakeGitHub, tmp_path: Path, keys: tuple[str, str]) -> None:
    _, public = keys
    other, _ = new_key()
    fake.add_app(APP_ID, public, INSTALLATION)
    with pytest.raises(ForgeUnavailable, match=r"refused the JWT of App 424242 \(401\).*private key") as raised:
        app_api(fake, tmp_path, other).rest("get repo", lambda r: r.default_branch)
    assert "\n" not in str(raised.value) and "PRIVATE KEY" not in str(raised.value)
    assert fake.refused_tokens == ["bad JWT: InvalidSignatureError"]
    with pytest.raises(ForgeUnavailable, match=r"no installation 7 \(404\).*installation_id"):
        app_api(fake, tmp_path, keys[0], installation=7).graphql(OPEN_PULLS, {"owner": "acme", "name": "shop",
                                                                              "cursor": None})
    assert fake.tokens_minted == []


def test_the_fake_refuses_jwts_that_github_would_refuse(fake: FakeGitHub, keys: tuple[str, str]) -> None:
    import httpx
    import jwt

    private, public = keys
    fake.add_app(APP_ID, public, INSTALLATION)
    now = int(time.time())

    def post(claims: dict[str, object], algorithm: str = "RS256", key: str = private) -> int:
        token = jwt.encode(claims, key, algorithm=algorithm)
        answer = httpx.post(f"{fake.url}/app/installations/{INSTALLATION}/access_tokens",
                            headers={"Authorization": f"Bearer {token}"}, timeout=5)
        return answer.status_code

    assert post({"iat": now - 60, "exp": now + 540, "iss": str(APP_ID)}) == 201
    assert post({"iat": now - 60, "exp": now + 3600, "iss": str(APP_ID)}) == 401  # more than 10 minutes
    assert post({"iat": now - 700, "exp": now - 10, "iss": str(APP_ID)}) == 401  # expired
    assert post({"iat": now - 60, "exp": now + 300, "iss": "1"}) == 401  # another app
    assert post({"iat": now - 60, "exp": now + 300, "iss": str(APP_ID)}, "HS256", "not-the-key-" * 4) == 401
    assert fake.refused_tokens == ["exp too far", "JWT expired", "unknown iss", "not RS256"]


def test_the_private_key_file_must_not_be_world_readable(tmp_path: Path, keys: tuple[str, str]) -> None:
    key_file = tmp_path / "app.pem"
    key_file.write_text(keys[0])
    key_file.chmod(0o644)
    with pytest.raises(AppKeyError, match=r"readable by every user.*chmod 600") as raised:
        read_private_key("", str(key_file))
    assert "\n" not in str(raised.value)
    key_file.chmod(0o600)
    assert read_private_key("", "app.pem", base=tmp_path) == keys[0].strip()
    assert read_private_key("APP_KEY", "", environ={"APP_KEY": keys[0]}) == keys[0].strip()
    one_line = keys[0].strip().replace("\n", "\\n")  # a variable set from a one-line .env file
    assert read_private_key("APP_KEY", "", environ={"APP_KEY": one_line}) == keys[0].strip()
    with pytest.raises(AppKeyError, match=r"no GitHub App private key in \$APP_KEY"):
        read_private_key("APP_KEY", "", environ={})
    (tmp_path / "not.pem").write_text("hello")
    (tmp_path / "not.pem").chmod(0o600)
    with pytest.raises(AppKeyError, match="not a PEM private key"):
        read_private_key("", str(tmp_path / "not.pem"))


def test_app_settings_are_checked_and_the_key_variable_is_hidden_from_agents(tmp_path: Path) -> None:
    path = tmp_path / "swarm.toml"
    settings = parse({"github": {"app_id": APP_ID, "installation_id": INSTALLATION,
                                 "private_key_env": "SWARM_APP_KEY"}}, path)
    assert settings.github.app_id == str(APP_ID)
    assert "SWARM_APP_KEY" in settings.secret_env_names()
    assert "" not in Settings().secret_env_names()
    with pytest.raises(ConfigError, match="app_id needs installation_id"):
        parse({"github": {"app_id": "1", "private_key_env": "K"}}, path)
    with pytest.raises(ConfigError, match="app_id needs private_key_env"):
        parse({"github": {"app_id": "1", "installation_id": 2}}, path)
    with pytest.raises(ConfigError, match=r"github\.private_key: unknown key"):
        parse({"github": {"private_key": "-----BEGIN RSA PRIVATE KEY-----"}}, path)


def app_stage(git_repo: Path, tmux_socket: str, fake: FakeGitHub, key_file: Path, *, ttl: float = 3600.0) -> Stage:
    _, public = KEYS
    fake.add_app(APP_ID, public, INSTALLATION, token_ttl=ttl)
    return stage_for(git_repo, tmux_socket, fake, github=f"app_id = {APP_ID}\ninstallation_id = {INSTALLATION}\n"
                                                        f'private_key_file = "{key_file}"\n')


KEYS = new_key()


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "secrets" / "app.pem"
    path.parent.mkdir()
    path.write_text(KEYS[0])
    path.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return path


@pytest.fixture
def bare_fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token="ghp_" + "personal" * 5) as server:
        yield server


def test_ticks_run_as_the_app_with_no_personal_token_and_the_key_stays_secret(
        git_repo: Path, tmux_socket: str, bare_fake: FakeGitHub, key_file: Path) -> None:
    stage = app_stage(git_repo, tmux_socket, bare_fake, key_file, ttl=3.0)
    no_pat = {"GITHUB_TOKEN": ""}
    task_id = stage.swarm("spawn", "--title", "App task", "--prompt", "scenario: commit",
                          env=no_pat).splitlines()[0].strip()
    out = ""
    for _ in range(25):
        out += stage.swarm("monitor", "run-once", env=no_pat)
        if is_status("ready")(stage.task(task_id)):
            break
        time.sleep(0.3)
    assert stage.task(task_id)["status"] == "ready", out[-2000:]
    minted = len(bare_fake.tokens_minted)
    assert minted >= 1
    # tokens live three seconds: a tick after the last one expired mints another and still reads GitHub
    expiry = time.time() + 3.0
    wait_for(lambda: time.time() > expiry, "the installation token to expire")
    stage.swarm("monitor", "run-once", env=no_pat)
    assert len(bare_fake.tokens_minted) > minted
    assert all(r.status != 401 for r in bare_fake.requests if not r.path.startswith("/app"))
    pr = bare_fake.pr("acme/shop", stage.task(task_id)["pr"]["number"])
    assert pr["title"] == "App task"
    key_lines = [line for line in KEYS[0].splitlines() if "PRIVATE KEY" not in line]
    for path in [*(stage.repo / ".swarm").rglob("*"), stage.repo / ".git" / "config"]:
        if path.is_file():
            text = path.read_text(errors="replace")
            assert not any(line in text for line in key_lines), path
            assert not any(token in text for token in bare_fake.tokens_minted), path
    assert not any(line in out for line in key_lines)


def test_a_world_readable_key_file_stops_the_tick_with_one_line(
        git_repo: Path, tmux_socket: str, bare_fake: FakeGitHub, key_file: Path) -> None:
    stage = app_stage(git_repo, tmux_socket, bare_fake, key_file)
    key_file.chmod(0o644)
    result = subprocess.run([*SWARM, "monitor", "run-once"], cwd=stage.repo, capture_output=True, text=True,
                            timeout=60, env={**os.environ, "GITHUB_TOKEN": ""})
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "readable by every user" in lines[0] and "chmod 600" in lines[0]
