"""A real container engine for the tests: rootful podman serving the Docker Engine API on a private unix
socket, with its own configuration and storage under the test's directory, and a small base image built
offline once (debootstrap from this machine's apt mirror, ``podman import``) into a git-ignored cache.

Nothing here touches the host's network setup: containers run with ``network=none``. See
/work/shared/docs/containers.md for why runc and the ulimits are needed on these machines.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache" / "podman-base"
IMAGE = "localhost/swarm-test/base:bookworm"
PACKAGES = "git,ca-certificates,python3"  # git for the agents' commits, python3 for tests/agents/*.py
SOURCES = (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list"))


class PodmanError(RuntimeError):
    """podman (or debootstrap) failed: the message has the command and the end of its output."""


def available() -> bool:
    return shutil.which("podman") is not None and (
        shutil.which("debootstrap") is not None or Path("/usr/sbin/debootstrap").exists())


def _run(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 600,
         stdin: int | None = None) -> str:
    try:
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout, check=False,
                              stdin=stdin)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PodmanError(f"`{' '.join(argv)}` did not run to the end: {exc}") from exc
    if done.returncode != 0:
        raise PodmanError(f"`{' '.join(argv)}` failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")
    return done.stdout


def mirror() -> str:
    """The Debian mirror this machine's apt uses (debootstrap fetches bookworm from it)."""
    for path in SOURCES:
        if path.exists():
            for line in path.read_text().splitlines():
                found = re.match(r"^\s*(?:URIs:|deb)\s+(?:\[[^]]*\]\s+)?(\S+)", line)
                if found and "security" not in found.group(1):
                    return found.group(1)
    return "http://deb.debian.org/debian"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def base_tarball() -> Path:
    """The base root filesystem as a tarball, built once (about a minute) and kept in ``.cache``."""
    tarball = CACHE / "bookworm-minbase.tar"
    with _locked(CACHE / ".build.lock"):
        if tarball.exists():
            return tarball
        rootfs = CACHE / "rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        _run([debootstrap, "--variant=minbase", f"--include={PACKAGES}", "bookworm", str(rootfs), mirror()],
             timeout=900)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        partial = tarball.with_suffix(".partial")
        _run(["tar", "-C", str(rootfs), "-cf", str(partial), "."])
        partial.rename(tarball)
        shutil.rmtree(rootfs, ignore_errors=True)
        return tarball


@dataclass
class Podman:
    """One private podman: its Docker API URL, its state directory, and the environment its CLI needs."""

    url: str
    root: Path
    env: dict[str, str]
    image: str = IMAGE
    pid: int = 0

    def cli(self, *args: str, timeout: float = 120) -> str:
        return _run(["podman", *args], env=self.env, timeout=timeout)

    def stop_service(self) -> None:
        """Stop the API service (the engine becomes unreachable; its containers keep running)."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0

    def start_service(self) -> None:
        socket = Path(self.url.removeprefix("unix://"))
        socket.unlink(missing_ok=True)
        log = (self.root / "service.log").open("ab")
        # conmon leaves an "oom" marker file in its working directory: keep it in ours, not the caller's
        child = subprocess.Popen(["podman", "system", "service", "--time=0", self.url], env=self.env,
                                 stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.root)
        self.pid = child.pid
        deadline = time.monotonic() + 30
        while not socket.exists():
            if child.poll() is not None or time.monotonic() > deadline:
                output = (self.root / "service.log").read_text()[-2000:]
                raise PodmanError(f"podman system service did not start: {output}")
            time.sleep(0.05)


def configure(root: Path) -> dict[str, str]:
    """containers.conf and storage.conf under ``root``; returns the environment that selects them."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "containers.conf").write_text(
        "[containers]\n"
        'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
        f'tmp_dir = "{root}/libpod-tmp"\n'
        'events_logger = "file"\n'
        f'static_dir = "{root}/libpod"\n'
        f'volume_path = "{root}/volumes"\n'
        "[network]\n"
        f'network_config_dir = "{root}/networks"\n'
    )
    (root / "storage.conf").write_text(
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{root}/storage"\n'
        f'runroot = "{root}/runroot"\n'
    )
    return {**os.environ, "CONTAINERS_CONF": str(root / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(root / "storage.conf")}


@contextlib.contextmanager
def podman_service(root: Path) -> Iterator[Podman]:
    """A private podman serving the Docker API at ``unix://ROOT/podman.sock`` with the base image
    imported; every container is removed and the service stopped afterwards."""
    env = configure(root)
    engine = Podman(url=f"unix://{root}/podman.sock", root=root, env=env)
    engine.cli("import", "--change", 'CMD ["/bin/bash"]', str(base_tarball()), IMAGE, timeout=300)
    engine.start_service()
    try:
        yield engine
    finally:
        engine.stop_service()
        with contextlib.suppress(PodmanError):
            engine.cli("rm", "--all", "--force", "--time", "0", timeout=60)
        with contextlib.suppress(PodmanError):
            engine.cli("system", "reset", "--force", timeout=120)  # unmounts the overlay layers under root
        unmount_under(root)


def unmount_under(root: Path) -> None:
    """Lazily unmount whatever is still mounted below ``root`` (the overlay driver mounts its own
    ``storage/overlay`` directory over itself, and a reset leaves that mount), deepest first, so that the
    test's temporary directory can be removed and no mount outlives the run."""
    prefix = str(root.resolve()) + "/"
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = {line.split()[4].replace("\\040", " ") for line in lines if len(line.split()) > 4}
    for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
