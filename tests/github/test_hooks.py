"""`swarm github hook install` and the doctor's webhook lines, as a user runs them, against the fake GitHub's
hooks API (real PyGithub), with deliveries the fake makes over real HTTP to a receiver on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import re
import stat
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from orchestrator.serve.webhooks import EVENTS
from tests.fakes.github_server import FakeGitHub
from tests.github.test_app import APP_ID, INSTALLATION, new_key
from tests.github.test_scenarios import TOKEN, Stage, stage_for

SECRET = "s3cret-" + "0123456789abcdef" * 2
URL = "https://swarm.example.com/webhooks/github"


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN) as server:
        yield server


@pytest.fixture
def stage(git_repo: Path, tmux_socket: str, fake: FakeGitHub) -> Stage:
    return stage_for(git_repo, tmux_socket, fake)


def with_secret(secret: str = SECRET) -> dict[str, str]:
    return {"SWARM_GITHUB_WEBHOOK_SECRET": secret}


class Receiver:
    """An HTTP endpoint standing in for `swarm serve`: answers every POST with ``code``, keeps the bodies."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.posts: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhooks/github"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver(202)
    yield found
    found.close()


def test_install_creates_the_hook_then_updates_it_never_a_second_one(stage: Stage) -> None:
    out = stage.swarm("github", "hook", "install", "--url", URL, env=with_secret())
    hooks = stage.fake.hooks("acme/shop")
    assert len(hooks) == 1
    hook = hooks[0]
    assert out.startswith(f"created webhook {hook['id']} on {URL}: events ")
    assert hook["config"]["url"] == URL and hook["config"]["content_type"] == "json"
    assert hook["config"]["secret"] == "********" and hook["secret"] == SECRET  # masked by the API, set
    assert sorted(hook["events"]) == sorted(EVENTS) and hook["active"] is True
    assert SECRET not in out
    rotated = "r0tated-" + "fedcba9876543210" * 2
    again = stage.swarm("github", "hook", "install", "--url", URL, env=with_secret(rotated))
    assert again.startswith(f"updated webhook {hook['id']} on {URL}")
    hooks = stage.fake.hooks("acme/shop")
    assert len(hooks) == 1 and hooks[0]["secret"] == rotated
    creates = [r for r in stage.fake.requests if r.method == "POST" and r.path.endswith("/hooks")]
    assert len(creates) == 1


def test_an_existing_hook_for_the_url_is_repaired_not_duplicated(stage: Stage) -> None:
    import httpx

    made = httpx.post(f"{stage.fake.url}/repos/acme/shop/hooks", headers={"Authorization": f"token {TOKEN}"},
                      json={"config": {"url": URL, "content_type": "form"}, "events": ["push"], "active": False})
    assert made.status_code == 201
    other = httpx.post(f"{stage.fake.url}/repos/acme/shop/hooks", headers={"Authorization": f"token {TOKEN}"},
                       json={"config": {"url": "https://ci.example.com/hook"}, "events": ["push"]})
    assert other.status_code == 201
    out = stage.swarm("github", "hook", "install", "--url", URL, env=with_secret())
    assert out.startswith(f"updated webhook {made.json()['id']}")
    mine = [h for h in stage.fake.hooks("acme/shop") if h["config"]["url"] == URL]
    assert len(mine) == 1 and mine[0]["active"] and mine[0]["config"]["content_type"] == "json"
    assert sorted(mine[0]["events"]) == sorted(EVENTS)
    assert len(stage.fake.hooks("acme/shop")) == 2  # the other hook is left alone


def test_dry_run_changes_nothing(stage: Stage) -> None:
    out = stage.swarm("github", "hook", "install", "--url", URL, "--dry-run", env=with_secret())
    assert out.startswith(f"would create a webhook on {URL}")
    assert stage.fake.hooks("acme/shop") == []
    stage.swarm("github", "hook", "install", "--url", URL, env=with_secret())
    hook_id = stage.fake.hooks("acme/shop")[0]["id"]
    before = [r for r in stage.fake.requests if r.method != "GET"]
    out = stage.swarm("github", "hook", "install", "--url", URL, "--dry-run", env=with_secret())
    assert out.startswith(f"would update webhook {hook_id}")
    assert [r for r in stage.fake.requests if r.method != "GET"] == before


@pytest.mark.parametrize(("secret", "message"), [
    ("", r"no webhook secret in \$SWARM_GITHUB_WEBHOOK_SECRET"),
    ("short", "has 5 characters; use at least 16"),
])
def test_a_missing_or_short_secret_or_a_bad_url_is_one_line(stage: Stage, secret: str, message: str) -> None:
    out = stage.swarm("github", "hook", "install", "--url", URL, check=2, env=with_secret(secret))
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and re.search(message, lines[0]), out
    out = stage.swarm("github", "hook", "install", "--url", "ftp://x/y", check=2, env=with_secret())
    assert "is not an http(s) URL" in out and len(out.strip().splitlines()) == 1
    assert stage.fake.hooks("acme/shop") == []


def test_a_token_that_may_not_manage_hooks_is_one_line(stage: Stage) -> None:
    stage.fake.hooks_forbidden = True
    out = stage.swarm("github", "hook", "install", "--url", URL, check=1, env=with_secret())
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1 and "answered 403" in lines[0] and "Webhooks read & write" in lines[0]


def app_key(tmp_path: Path) -> tuple[Path, str]:
    private, public = new_key()
    key_file = tmp_path / "app.pem"
    key_file.write_text(private)
    key_file.chmod(stat.S_IRUSR | stat.S_IWUSR)
    return key_file, public


def test_install_works_as_the_app_and_an_app_without_the_hooks_permission_is_told(
        git_repo: Path, tmux_socket: str, fake: FakeGitHub, tmp_path: Path) -> None:
    key_file, public = app_key(tmp_path)
    fake.add_app(APP_ID, public, INSTALLATION)
    stage = stage_for(git_repo, tmux_socket, fake, github=f'app_id = {APP_ID}\ninstallation_id = {INSTALLATION}\n'
                                                         f'private_key_file = "{key_file}"\n')
    out = stage.swarm("github", "hook", "install", "--url", URL, env={**with_secret(), "GITHUB_TOKEN": ""})
    assert out.startswith("created webhook") and len(fake.tokens_minted) == 1
    doctor = stage.swarm("doctor", check=None, env={**with_secret(), "GITHUB_TOKEN": ""})
    assert f"github app: swarm-bot (app {APP_ID}), installation {INSTALLATION}: token minted" in doctor
    assert "github app permissions: metadata read, contents write, pull_requests write" in doctor
    assert "github: acme/shop reachable" in doctor and "as the App" in doctor
    assert "no delivery yet" in doctor
    narrow = {"metadata": "read", "contents": "read", "pull_requests": "write", "checks": "read", "statuses": "read"}
    fake.add_app(APP_ID, public, INSTALLATION, permissions=narrow)
    out = stage.swarm("github", "hook", "install", "--url", URL, check=1, env={**with_secret(), "GITHUB_TOKEN": ""})
    assert "answered 403" in out
    doctor = stage.swarm("doctor", check=1, env={**with_secret(), "GITHUB_TOKEN": ""})
    assert "FAIL github app permissions: missing contents: write" in doctor
    assert "ok   github app permissions: no repository_hooks: write" in doctor
    assert "ok   github webhook: this token may not read acme/shop's webhooks (403)" in doctor
    assert "PRIVATE KEY" not in doctor and not any(t in doctor for t in fake.tokens_minted)


def lines_about(doctor: str, *words: str) -> list[str]:
    return [line for line in doctor.splitlines() if any(w in line for w in words)]


def test_doctor_checks_the_secret_the_hook_and_its_last_delivery(stage: Stage, receiver: Receiver) -> None:
    doctor = stage.swarm("doctor", check=None)
    assert lines_about(doctor, "webhook secret", "github webhook") == [
        "ok   webhook secret: $SWARM_GITHUB_WEBHOOK_SECRET not set — `swarm serve` refuses every webhook and relies "
        "on its reconcile timer; set it to `openssl rand -hex 32` to react in seconds",
        "ok   github webhook: none points at a `swarm serve` (…/webhooks/github); run `swarm github hook install "
        "--url https://HOST/webhooks/github` if you run it",
    ]
    doctor = stage.swarm("doctor", check=None, env=with_secret())
    assert "FAIL github webhook: none points at a `swarm serve`" in doctor
    doctor = stage.swarm("doctor", check=None, env=with_secret("tooshort"))
    assert "FAIL webhook secret: $SWARM_GITHUB_WEBHOOK_SECRET has only 8 characters" in doctor
    assert "tooshort" not in doctor

    stage.swarm("github", "hook", "install", "--url", receiver.url, env=with_secret())
    hook_id = stage.fake.hooks("acme/shop")[0]["id"]
    doctor = stage.swarm("doctor", check=None, env=with_secret())
    assert f"ok   github webhook {hook_id} → {receiver.url}: active, JSON, events " in doctor
    assert f"ok   github webhook {hook_id}: no delivery yet" in doctor

    assert stage.fake.deliver("acme/shop", "pull_request", {"action": "opened"}) == [202]
    headers, body = receiver.posts[-1]
    assert headers["x-hub-signature-256"] == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    doctor = stage.swarm("doctor", check=None, env=with_secret())
    assert re.search(rf"ok   github webhook {hook_id}: last delivery \(pull_request, .*\) answered 202", doctor)

    receiver.code = 500
    stage.fake.deliver("acme/shop", "check_run", {"action": "completed"})
    doctor = stage.swarm("doctor", check=1, env=with_secret())
    assert re.search(rf"FAIL github webhook {hook_id}: last delivery \(check_run, .*\) failed: 500 .* is `swarm serve` "
                     rf"running and reachable at {re.escape(receiver.url)}\?", doctor)
    receiver.close()
    stage.fake.deliver("acme/shop", "push", {"ref": "refs/heads/main"})
    doctor = stage.swarm("doctor", check=1, env=with_secret())
    assert f"FAIL github webhook {hook_id}: last delivery (push, " in doctor and "no answer failed to connect" in doctor


def test_doctor_flags_an_inactive_hook_missing_events(stage: Stage) -> None:
    import httpx

    made = httpx.post(f"{stage.fake.url}/repos/acme/shop/hooks", headers={"Authorization": f"token {TOKEN}"},
                      json={"config": {"url": URL, "content_type": "json"}, "events": ["push"], "active": False})
    doctor = stage.swarm("doctor", check=1, env=with_secret())
    line = lines_about(doctor, f"github webhook {made.json()['id']}")[0]
    assert line.startswith("FAIL") and "inactive" in line and "misses events check_run" in line
    assert f"swarm github hook install --url {URL}" in line


def test_doctor_on_a_token_that_may_not_read_hooks_is_an_info_line(stage: Stage) -> None:
    stage.fake.hooks_forbidden = True
    doctor = stage.swarm("doctor", check=None, env=with_secret())
    assert lines_about(doctor, "github webhook") == [
        "ok   github webhook: this token may not read acme/shop's webhooks (403); not checked (give it Webhooks: "
        "read to let doctor check them)"]
