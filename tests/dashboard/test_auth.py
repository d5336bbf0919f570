"""Who may look and act: the serve token (cookie after ?token= or the login form, or a Bearer header), CSRF
on every POST, the Host check on a token-less loopback service, and `swarm serve --host` refusing to
listen beyond loopback without the token."""

from __future__ import annotations

import re
import socket
import subprocess
import sys

import httpx
import pytest
from starlette.requests import Request

from orchestrator.dashboard.auth import CSRF_COOKIE, SESSION_COOKIE, Guard, is_loopback
from tests.dashboard.conftest import PLANTED, Site
from tests.worlds import REPO_ROOT, write_config

SWARM = [sys.executable, "-c", "from orchestrator.cli import main; main()"]


def _csrf(client: httpx.Client, path: str) -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def test_with_a_token_every_page_needs_it(token_site: Site) -> None:
    token = token_site.token
    with httpx.Client(base_url=token_site.url, timeout=10) as anonymous:
        for path in ("/", "/fragment/board", "/events", f"/tasks/{token_site.ids['failed']}",
                     f"/tasks/{token_site.ids['failed']}/tail"):
            answer = anonymous.get(path)
            assert answer.status_code == 401, path
            assert "Ready work" not in answer.text and "Sign in" in answer.text
        assert anonymous.get("/", headers={"Authorization": "Bearer wrong-token-value"}).status_code == 401
        assert anonymous.get("/", params={"token": "wrong"}).status_code == 401
        assert anonymous.get("/", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # a link with the token: a cookie that is not the token, and an address without it
        signed = anonymous.get("/", params={"token": token})
        assert signed.status_code == 303 and signed.headers["location"] == "/?said=signed-in"
        cookie = signed.cookies[SESSION_COOKIE]
        assert token not in cookie and "httponly" in signed.headers["set-cookie"].lower()
        assert "samesite=strict" in signed.headers["set-cookie"].lower()
        page = anonymous.get("/")
        assert page.status_code == 200 and "Ready work" in page.text and token not in page.text
    with httpx.Client(base_url=token_site.url, timeout=10) as form_user:
        wrong = form_user.post("/login", data={"token": "nope", "next": "/"})
        assert wrong.status_code == 401 and "not the one" in wrong.text
        for elsewhere in ("//evil.example/", "/\\evil.example", "https://evil.example/"):
            right = form_user.post("/login", data={"token": token, "next": elsewhere})
            assert right.status_code == 303 and right.headers["location"] == "/?said=signed-in", elsewhere
        back = form_user.post("/login", data={"token": token, "next": f"/tasks/{token_site.ids['failed']}"})
        assert back.headers["location"] == f"/tasks/{token_site.ids['failed']}?said=signed-in"
        assert form_user.get("/").status_code == 200


def test_actions_need_a_post_with_the_csrf_token(token_site: Site) -> None:
    failed = token_site.ids["failed"]
    with httpx.Client(base_url=token_site.url, timeout=10) as client:
        client.get("/", params={"token": token_site.token})
        csrf = _csrf(client, f"/tasks/{failed}")
        assert client.get(f"/tasks/{failed}/cancel").status_code == 405
        assert client.post(f"/tasks/{failed}/retry", data={"note": "x"}).status_code == 403
        assert client.post(f"/tasks/{failed}/retry", data={"note": "x", "csrf": "0" * 64}).status_code == 403
        # another browser's (or an older process's) token does not fit this browser's nonce
        other = httpx.Client(base_url=token_site.url, timeout=10)
        other.get("/", params={"token": token_site.token})
        assert client.post(f"/tasks/{failed}/retry", data={"csrf": _csrf(other, "/")}).status_code == 403
        other.close()
        ok = client.post(f"/tasks/{token_site.ids['cancelled']}/retry", data={"csrf": csrf})
        assert ok.status_code in (303, 409), ok.text  # past CSRF: the action itself answered
    with httpx.Client(base_url=token_site.url, timeout=10) as stranger:  # a CSRF cookie but no token
        stranger.cookies.set(CSRF_COOKIE, client.cookies[CSRF_COOKIE])
        assert stranger.post(f"/tasks/{failed}/retry", data={"csrf": csrf}).status_code == 403
    assert token_site.registry.read().tasks[failed].status.value == "failed"


def test_without_a_token_only_loopback_host_names_are_served(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=10) as client:
        assert client.get("/").status_code == 200
        assert client.get("/", headers={"Host": f"localhost:{site.url.rsplit(':', 1)[1]}"}).status_code == 200
        rebound = client.get("/", headers={"Host": "attacker.example"})
        assert rebound.status_code == 403 and "Ready work" not in rebound.text


def _request(host: str = "127.0.0.1:8765", cookies: str = "") -> Request:
    headers = [(b"host", host.encode())] + ([(b"cookie", cookies.encode())] if cookies else [])
    return Request({"type": "http", "method": "POST", "path": "/", "headers": headers, "query_string": b""})


def test_the_guard_refuses_actions_beyond_loopback_without_a_token() -> None:
    guard = Guard(token=lambda: "", loopback=False)
    nonce = "a" * 32
    allowed, why = guard.may_act(_request(cookies=f"{CSRF_COOKIE}={nonce}"), guard.csrf_token(nonce))
    assert not allowed and "serve token" in why
    loopback = Guard(token=lambda: "", loopback=True)
    assert loopback.may_act(_request(cookies=f"{CSRF_COOKIE}={nonce}"), loopback.csrf_token(nonce))[0]
    assert not loopback.may_act(_request(cookies=f"{CSRF_COOKIE}={nonce}"), guard.csrf_token(nonce))[0]
    assert [is_loopback(h) for h in ("127.0.0.1", "::1", "localhost", "0.0.0.0", "", "10.0.0.5", "example.com")] \
        == [True, True, True, False, False, False, False]


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def test_serve_on_any_address_without_the_token_refuses_to_start(git_repo, tmux_socket,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(git_repo, tmux_socket)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in __import__("os").environ.items() if k != "SWARM_SERVE_TOKEN"}
    env["PYTHONPATH"] = str(REPO_ROOT)
    out = subprocess.run([*SWARM, "serve", "--host", "0.0.0.0", "--port", str(port)], cwd=git_repo, env=env,
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 2, out
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "SWARM_SERVE_TOKEN" in lines[0] and "Traceback" not in out.stderr
    assert not (git_repo / ".swarm" / "serve.json").exists() and _port_free(port)
    assert PLANTED["SWARM_SERVE_TOKEN"] not in out.stderr
