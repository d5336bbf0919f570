"""The push gate over plain HTTP, without a container: the real gate process (``python -m
monitor.runtime.gitgate``, detached as the monitor starts it) and the real git client. Only the task's
branch goes in, fast-forward only, with the attempt's token; everything else is refused and leaves
nothing; what was pushed lands in the local branch; the token dies with the gate and shows nowhere."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from monitor.runtime.gitgate import GATE_DIR, STAGING, STATE, authorized
from monitor.runtime.pushgate import Access, PushSettings, land, running, start, stop
from tests.conftest import git
from tests.waiting import wait_for

BRANCH = "swarm/t1"


@dataclass
class Rig:
    repo: Path
    worktree: Path
    run_dir: Path
    clone: Path  # the agent's own repository (what a container holds)
    access: Access
    credentials: Path

    def push(
        self, *refspecs: str, token: str | None = None, extra: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        store = self.credentials
        if token is not None:
            store = self.credentials.with_name("other-credentials")
            store.write_text(Access(self.access.url, token).credential_line())
        return subprocess.run(["git", "-C", str(self.clone), "-c", f"credential.helper=store --file={store}",
                               "-c", "credential.interactive=false", "push", *extra, self.access.url, *refspecs],
                              capture_output=True, text=True, timeout=60, check=False,
                              env={"PATH": "/usr/bin:/bin", "HOME": str(self.clone), "GIT_TERMINAL_PROMPT": "0"})

    def staged(self, ref: str = f"refs/heads/{BRANCH}") -> str:
        done = subprocess.run(["git", "--git-dir", str(self.run_dir / GATE_DIR / STAGING), "rev-parse", "--verify",
                               "-q", ref], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    def commit(self, name: str) -> str:
        (self.clone / name).write_text(name)
        git(self.clone, "add", name)
        git(self.clone, "commit", "-q", "-m", name)
        return git(self.clone, "rev-parse", "HEAD")


def make_rig(git_repo: Path, tmp_path: Path, push: PushSettings) -> Rig:
    worktree = tmp_path / "wt"
    git(git_repo, "worktree", "add", "-q", "-b", BRANCH, str(worktree), "main")
    run_dir = tmp_path / "run" / "1"
    run_dir.mkdir(parents=True)
    clone = tmp_path / "agent"
    git(tmp_path, "clone", "-q", "-b", BRANCH, str(git_repo), str(clone))
    for key, value in (("user.name", "agent"), ("user.email", "agent@example.invalid")):
        git(clone, "config", key, value)
    access = start(run_dir, worktree, BRANCH, push)
    credentials = tmp_path / "credentials"
    credentials.write_text(access.credential_line())
    return Rig(git_repo, worktree, run_dir, clone, access, credentials)


@pytest.fixture
def rig(git_repo: Path, tmp_path: Path) -> Iterator[Rig]:
    made = make_rig(git_repo, tmp_path, PushSettings())
    yield made
    stop(made.run_dir)


def test_the_tasks_branch_goes_in_and_lands_in_the_local_branch(rig: Rig) -> None:
    base = git(rig.worktree, "rev-parse", "HEAD")
    assert rig.staged() == base
    head = rig.commit("one.txt")
    done = rig.push(f"HEAD:refs/heads/{BRANCH}")
    assert done.returncode == 0, done.stderr
    assert rig.staged() == head
    assert git(rig.worktree, "rev-parse", "HEAD") == base, "nothing lands before the monitor says so"
    assert land(rig.run_dir, rig.worktree, BRANCH)
    assert git(rig.repo, "rev-parse", BRANCH) == head and (rig.worktree / "one.txt").exists()
    assert not land(rig.run_dir, rig.worktree, BRANCH), "landing twice is a no-op"


@pytest.mark.parametrize(("refspecs", "says"), [
    (("HEAD:refs/heads/main",), "refs/heads/main refused"),
    (("HEAD:refs/heads/other",), "refs/heads/other refused"),
    (("HEAD:refs/tags/v1",), "refs/tags/v1 refused"),
    ((f":refs/heads/{BRANCH}",), "deleting"),
    (("HEAD:refs/notes/x",), "refs/notes/x refused"),
])
def test_any_other_ref_a_tag_or_a_delete_is_refused_and_leaves_nothing(
    rig: Rig, refspecs: tuple[str, ...], says: str
) -> None:
    before = rig.staged()
    rig.commit("elsewhere.txt")
    done = rig.push(*refspecs)
    assert done.returncode != 0
    assert says in done.stderr, done.stderr
    assert rig.staged() == before
    assert not rig.staged("refs/heads/main") and not rig.staged("refs/tags/v1")
    count = git(rig.run_dir / GATE_DIR / STAGING, "count-objects", "-v")
    assert "count: 0" in count and "in-pack: 0" in count, "a refused push left objects: " + count


def test_a_push_of_the_branch_with_another_ref_is_refused_whole(rig: Rig) -> None:
    before = rig.staged()
    rig.commit("two.txt")
    done = rig.push(f"HEAD:refs/heads/{BRANCH}", "HEAD:refs/heads/other", extra=("--atomic",))
    assert done.returncode != 0 and "refs/heads/other refused" in done.stderr
    assert rig.staged() == before


def test_a_non_fast_forward_is_refused_unless_the_host_allows_it(git_repo: Path, tmp_path: Path) -> None:
    strict = make_rig(git_repo, tmp_path / "strict", PushSettings())
    try:
        strict.commit("a.txt")
        assert strict.push(f"HEAD:refs/heads/{BRANCH}").returncode == 0
        pushed = strict.staged()
        git(strict.clone, "reset", "-q", "--hard", "HEAD~1")
        strict.commit("b.txt")
        done = strict.push(f"+HEAD:refs/heads/{BRANCH}")
        assert done.returncode != 0 and "non-fast-forward" in done.stderr, done.stderr
        assert strict.staged() == pushed
    finally:
        stop(strict.run_dir)
    git(git_repo, "worktree", "remove", "--force", str(strict.worktree))
    git(git_repo, "branch", "-D", BRANCH)
    loose = make_rig(git_repo, tmp_path / "loose", PushSettings(allow_force=True))
    try:
        loose.commit("a.txt")
        assert loose.push(f"HEAD:refs/heads/{BRANCH}").returncode == 0
        git(loose.clone, "reset", "-q", "--hard", "HEAD~1")
        rewritten = loose.commit("b.txt")
        assert loose.push(f"+HEAD:refs/heads/{BRANCH}").returncode == 0
        assert loose.staged() == rewritten
    finally:
        stop(loose.run_dir)


def test_a_wrong_token_no_token_and_fetching_are_refused(rig: Rig) -> None:
    rig.commit("three.txt")
    before = rig.staged()
    done = rig.push(f"HEAD:refs/heads/{BRANCH}", token="not-the-token")
    assert done.returncode != 0 and "Authentication failed" in done.stderr, done.stderr
    assert rig.staged() == before
    base = rig.access.url
    refs = f"{base}/info/refs?service=git-receive-pack"
    assert httpx.get(refs).status_code == 401
    assert httpx.get(refs, auth=("swarm", rig.access.token + "x")).status_code == 401
    assert httpx.get(refs, auth=("swarm", rig.access.token)).status_code == 200
    assert httpx.get(f"{base}/info/refs?service=git-upload-pack", auth=("swarm", rig.access.token)).status_code == 403
    assert httpx.post(f"{base}/git-upload-pack", auth=("swarm", rig.access.token), content=b"0000").status_code == 403
    assert httpx.get(f"{base}/HEAD", auth=("swarm", rig.access.token)).status_code == 404
    fetched = subprocess.run(["git", "-C", str(rig.clone), "-c", f"credential.helper=store --file={rig.credentials}",
                              "fetch", base, BRANCH], capture_output=True, text=True, timeout=60, check=False)
    assert fetched.returncode != 0


def test_the_token_dies_with_the_gate_and_shows_nowhere(rig: Rig) -> None:
    token = rig.access.token
    state = rig.run_dir / GATE_DIR / STATE
    pid = int(json.loads(state.read_text())["pid"])
    assert token.encode() not in Path(f"/proc/{pid}/cmdline").read_bytes()
    assert token.encode() not in Path(f"/proc/{pid}/environ").read_bytes()
    rig.commit("four.txt")
    assert rig.push(f"HEAD:refs/heads/{BRANCH}").returncode == 0
    for path in rig.run_dir.rglob("*"):
        if path.is_file():
            assert token.encode() not in path.read_bytes(), f"the token is in {path}"
    stop(rig.run_dir)
    assert not running(rig.run_dir)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or b"zombie" in Path(f"/proc/{pid}/status").read_bytes()
             .lower(), what="the gate process to end")
    rig.commit("five.txt")
    done = rig.push(f"HEAD:refs/heads/{BRANCH}")
    assert done.returncode != 0, "the token still works after the attempt ended"
    assert not (rig.run_dir / GATE_DIR / STAGING).exists()


def test_a_new_gate_for_the_same_attempt_has_a_new_token(rig: Rig) -> None:
    old = rig.access
    new = start(rig.run_dir, rig.worktree, BRANCH, PushSettings())
    assert new.token != old.token
    rig.commit("six.txt")
    assert rig.push(f"HEAD:refs/heads/{BRANCH}", token=old.token).returncode != 0
    rig.access = new
    rig.credentials.write_text(new.credential_line())
    assert rig.push(f"HEAD:refs/heads/{BRANCH}").returncode == 0


@pytest.mark.parametrize(("header", "ok"), [
    (None, False),
    ("", False),
    ("Bearer s3cret-token-value", False),
    ("Basic " + base64.b64encode(b"swarm:s3cret-token-value").decode(), True),
    ("Basic " + base64.b64encode(b"anyone:s3cret-token-value").decode(), True),
    ("Basic " + base64.b64encode(b"swarm:s3cret-token-valuE").decode(), False),
    ("Basic " + base64.b64encode(b"s3cret-token-value").decode(), False),  # no colon: a user name, no password
    ("Basic !!!not-base64", False),
])
def test_authorized(header: str | None, ok: bool) -> None:
    assert authorized(header, "s3cret-token-value") is ok
    assert authorized(header, "") is False
