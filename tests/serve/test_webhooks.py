"""POST /webhooks/github over real HTTP (httpx against uvicorn on 127.0.0.1), signed the way GitHub signs,
with payloads shaped like GitHub's documented ones (tests/fixtures/github-webhooks/)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import httpx
import pytest

from orchestrator.serve.webhooks import DELIVERIES_FILE, DeliveryLog, concerned_tasks, refs_of, verify
from registry.models import RegistryState, Status
from tests.serve.conftest import SECRET, Hooked, payload, signed_headers, task
from tests.waiting import wait_for

EVENTS = [
    ("check_run", "check_run.completed"), ("check_suite", "check_suite.completed"), ("status", "status"),
    ("pull_request", "pull_request.closed"), ("pull_request_review", "pull_request_review.submitted"),
    ("issue_comment", "issue_comment.created"), ("push", "push"),
]


@pytest.mark.parametrize(("event", "name"), EVENTS)
def test_each_event_wakes_a_tick_for_its_task(hooked: Hooked, event: str, name: str) -> None:
    other = task("other-task-9", pr=8, base="develop")
    hooked.state = hooked.state.with_task(other)
    body = payload(name)
    answer = httpx.post(f"{hooked.url}/webhooks/github", content=body, headers=signed_headers(body, event))
    assert answer.status_code == 202, answer.text
    wait_for(lambda: hooked.woken_ids() == {"fix-login-1a2b"}, f"{event} to wake the task")
    assert hooked.accepted[0][0] == event


def test_the_secret_is_checked_before_anything_and_the_body_never_logged(
        hooked: Hooked, caplog: pytest.LogCaptureFixture) -> None:
    body = payload("check_run.completed")
    url = f"{hooked.url}/webhooks/github"
    caplog.set_level(logging.INFO)
    unsigned = {k: v for k, v in signed_headers(body, "check_run").items() if k != "X-Hub-Signature-256"}
    assert httpx.post(url, content=body, headers=unsigned).status_code == 401
    assert httpx.post(url, content=body, headers=signed_headers(body, "check_run", secret=b"wrong")).status_code == 401
    tampered = body.replace(b"failure", b"success")
    assert httpx.post(url, content=tampered, headers=signed_headers(body, "check_run")).status_code == 401
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 3
    assert not any("lockout" in line or "acme" in line for line in refused), "the body stays out of the log"
    assert hooked.woken == [] and hooked.accepted == []
    assert not verify(b"", body, signed_headers(body, "check_run", secret=b"")["X-Hub-Signature-256"])


def test_a_repeated_delivery_is_ignored_also_after_a_restart(hooked: Hooked, tmp_path: Path) -> None:
    body = payload("pull_request_review.submitted")
    headers = signed_headers(body, "pull_request_review", delivery="72d3162e-cc78-11e3-81ab-4c9367dc0958")
    url = f"{hooked.url}/webhooks/github"
    assert httpx.post(url, content=body, headers=headers).status_code == 202
    wait_for(lambda: hooked.woken, "the first delivery's wake")
    again = httpx.post(url, content=body, headers=headers)
    assert again.status_code == 204 and again.headers["x-swarm-reason"] == "repeated delivery"
    assert len(hooked.woken) == 1
    restarted = DeliveryLog(tmp_path / DELIVERIES_FILE)
    assert not restarted.first_time("72d3162e-cc78-11e3-81ab-4c9367dc0958")


def test_the_delivery_memory_is_bounded(tmp_path: Path) -> None:
    deliveries = DeliveryLog(tmp_path / DELIVERIES_FILE, keep=10)
    for number in range(55):
        assert deliveries.first_time(f"d-{number}")
    assert len(deliveries.seen) == 10
    assert (tmp_path / DELIVERIES_FILE).read_text().count("\n") <= 20
    reloaded = DeliveryLog(tmp_path / DELIVERIES_FILE, keep=10)
    assert not reloaded.first_time("d-54") and reloaded.first_time("d-0")


def test_an_oversized_body_is_refused_with_413(hooked: Hooked) -> None:
    big = b'{"pad": "' + b"x" * (300 * 1024) + b'"}'
    url = f"{hooked.url}/webhooks/github"
    assert httpx.post(url, content=big, headers=signed_headers(big, "push")).status_code == 413

    def chunks():  # no Content-Length: the cap holds while reading
        for _ in range(40):
            yield b"x" * 10_000

    assert httpx.post(url, content=chunks(), headers={"X-GitHub-Event": "push"}).status_code == 413
    assert hooked.woken == []


def test_unknown_events_ping_and_other_repositories_wake_nothing(hooked: Hooked) -> None:
    url = f"{hooked.url}/webhooks/github"
    ping = payload("ping")
    assert httpx.post(url, content=ping, headers=signed_headers(ping, "ping")).status_code == 204
    star = b'{"action": "created", "repository": {"full_name": "acme/shop"}}'
    assert httpx.post(url, content=star, headers=signed_headers(star, "star")).status_code == 204
    foreign = payload("check_run.completed").replace(b'"full_name": "acme/shop"', b'"full_name": "evil/fork"')
    assert httpx.post(url, content=foreign, headers=signed_headers(foreign, "check_run")).status_code == 202
    junk = b"not json"
    assert httpx.post(url, content=junk, headers=signed_headers(junk, "push")).status_code == 202
    assert httpx.get(f"{hooked.url}/healthz").json()["ok"] is True
    assert hooked.woken == []


def test_a_form_encoded_delivery_is_read_too(hooked: Hooked) -> None:
    from urllib.parse import urlencode

    body = urlencode({"payload": payload("issue_comment.created").decode()}).encode()
    headers = {**signed_headers(body, "issue_comment"), "Content-Type": "application/x-www-form-urlencoded"}
    assert httpx.post(f"{hooked.url}/webhooks/github", content=body, headers=headers).status_code == 202
    wait_for(lambda: hooked.woken_ids() == {"fix-login-1a2b"}, "the form-encoded comment's wake")


def test_mapping_by_branch_number_sha_and_base_push() -> None:
    state = RegistryState()
    for t in (task("a-1", pr=1), task("b-2", pr=2, status=Status.ready), task("c-3", pr=None, status=Status.running),
              task("d-4", pr=4, status=Status.merged), task("e-5", pr=5, base="develop")):
        state = state.with_task(t)
    push = json.loads(payload("push"))
    assert concerned_tasks(state, refs_of("push", push)) == {"a-1", "b-2"}, "checking and ready tasks on main"
    assert concerned_tasks(state, refs_of("push", {**push, "ref": "refs/tags/v1"})) == set()
    review = json.loads(payload("pull_request_review.submitted"))
    review["pull_request"]["number"] = 5
    review["pull_request"]["head"]["ref"] = "feature/x"
    assert concerned_tasks(state, refs_of("pull_request_review", review)) == {"e-5"}
    comment = json.loads(payload("issue_comment.created"))
    del comment["issue"]["pull_request"]
    assert concerned_tasks(state, refs_of("issue_comment", comment)) == set(), "a plain issue is not a PR"
    status = json.loads(payload("status"))
    status["branches"] = [{"name": "swarm/c-3"}]
    assert concerned_tasks(state, refs_of("status", status)) == {"c-3"}
    assert concerned_tasks(state, refs_of("check_run", {"check_run": "garbage"})) == set()
    assert verify(SECRET, b"x", signed_headers(b"x", "push")["X-Hub-Signature-256"])


def test_a_delivery_that_cannot_be_mapped_is_one_line_and_the_service_goes_on(
        hooked: Hooked, caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> RegistryState:
        raise OSError(5, "Input/output error")

    hooked.handler.read_state = broken
    body = payload("push")
    url = f"{hooked.url}/webhooks/github"
    assert httpx.post(url, content=body, headers=signed_headers(body, "push")).status_code == 202
    wait_for(lambda: any("not handled" in r.getMessage() for r in caplog.records), "the warning")
    assert httpx.get(f"{hooked.url}/healthz").status_code == 200


@pytest.mark.parametrize(("event", "name", "edit"), [
    ("check_run", "check_run.completed", {"action": "created"}),
    ("check_suite", "check_suite.completed", {"action": "requested"}),
    ("status", "status", {"state": "pending"}),
    ("pull_request", "pull_request.closed", {"action": "labeled"}),
])
def test_deliveries_that_change_nothing_wake_nothing(hooked: Hooked, event: str, name: str,
                                                     edit: dict[str, str]) -> None:
    body = json.dumps({**json.loads(payload(name)), **edit}).encode()
    answer = httpx.post(f"{hooked.url}/webhooks/github", content=body, headers=signed_headers(body, event))
    assert answer.status_code == 202
    wait_for(lambda: hooked.accepted, "the delivery to be worked")
    assert hooked.accepted[0][2] == 0 and hooked.woken == []
