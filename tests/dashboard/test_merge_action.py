"""The merge-train button: with ``[merge] mode = "queue"`` a ready task's page offers "Approve for the merge
train", which records the approval exactly as `swarm merge TASK` does (orchestrator.merging.request_merge);
without the queue, or once approved, there is no button, and a forged POST is refused in one line."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.dashboard.conftest import Site, serve_dashboard
from tests.worlds import write_config


@pytest.fixture
def queue_site(git_repo: Path, tmux_socket: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Site]:
    write_config(git_repo, tmux_socket)
    config = git_repo / "swarm.toml"
    config.write_text(config.read_text() + '\n[merge]\nmode = "queue"\n')
    yield from serve_dashboard(git_repo, token=False, monkeypatch=monkeypatch)


def _csrf(client: httpx.Client, path: str) -> tuple[str, str]:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1), page.text


def test_a_ready_task_is_approved_for_the_train_from_its_page(queue_site: Site) -> None:
    ready = queue_site.ids["ready"]
    subprocess.run(["git", "branch", f"swarm/{ready}"], cwd=queue_site.repo, check=True)
    head = subprocess.run(["git", "rev-parse", f"swarm/{ready}"], cwd=queue_site.repo, check=True,
                          capture_output=True, text=True).stdout.strip()
    with queue_site.client() as client:
        csrf, page = _csrf(client, f"/tasks/{ready}")
        assert "Approve for the merge train" in page
        _csrf_failed, failed_page = _csrf(client, f"/tasks/{queue_site.ids['failed']}")
        assert "Approve for the merge train" not in failed_page, "only a ready task can join"
        assert client.post(f"/tasks/{ready}/merge", data={}).status_code == 403
        assert queue_site.registry.read().tasks[ready].merge_request is None
        done = client.post(f"/tasks/{ready}/merge", data={"csrf": csrf})
        assert done.status_code == 303 and done.headers["location"].endswith("said=merge")
        request = queue_site.registry.read().tasks[ready].merge_request
        assert request is not None and request.head == head and request.via == "dashboard"
        _csrf_again, again = _csrf(client, f"/tasks/{ready}?said=merge")
        assert "Approved for the merge train." in again and "Approve for the merge train</button>" not in again
        refused = client.post(f"/tasks/{queue_site.ids['failed']}/merge", data={"csrf": csrf})
        assert refused.status_code == 409 and "only a ready task can join the merge train" in refused.text


def test_without_the_queue_there_is_no_button(site: Site) -> None:
    with site.client() as client:
        _csrf_value, page = _csrf(client, f"/tasks/{site.ids['ready']}")
    assert "Approve for the merge train" not in page
