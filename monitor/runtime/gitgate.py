"""The push gate: a git smart-HTTP endpoint that takes one attempt's pushes of one branch, nothing else.

GitHub has no token limited to one branch, so an agent on a host that cannot see the worktree
(``shares_worktree = false``, ``push_credential = true``) is never given a forge credential. It gets
``origin`` pointing here, with a random per-attempt token (HTTP Basic auth, compared with
:func:`hmac.compare_digest`). The gate serves ``git-receive-pack`` only (no ``git-upload-pack``: the
container's clone needs none, the branch was pushed into it) into a staging bare repository of the
attempt whose objects borrow the main repository's (``objects/info/alternates``; its refs are not
advertised), and refuses, inside git's own receive-pack:

* every ref but ``refs/heads/<the task's branch>`` (other branches, tags, notes): a ``pre-receive`` hook;
* deletes: the hook and ``receive.denyDeletes``;
* non-fast-forward updates, unless the host allows them (``push_force``): ``receive.denyNonFastForwards``.

A refused push leaves nothing: git keeps the objects of a push in quarantine until ``pre-receive``
accepts. What lands in the staging repository is brought into the task's branch by the monitor
(:mod:`monitor.runtime.pushgate`), and the forge push is the monitor's, with swarm's own credentials.

The gate is one small process per attempt (``python -m monitor.runtime.gitgate RUN_DIR``), detached from
the monitor so it serves the agent while ``swarm monitor run-once`` comes and goes; it stops when the
monitor writes ``stop`` in its directory (the attempt ended, was killed or cancelled), when the attempt's
``result.json`` appears, its run directory goes or a later attempt's appears, or after :data:`MAX_LIFETIME`.
Its token dies with it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import hmac
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

GATE_DIR = "gate"  # in the attempt's run directory
STAGING = "push.git"
SPEC, STATE, TOKEN_FILE, STOP = "spec.json", "state.json", ".token", "stop"
MAX_BODY = 1 << 30  # one push: 1 GiB at most
MAX_LIFETIME = 48 * 3600.0
GIT_TIMEOUT = 600
_PROTOCOL = re.compile(r"^[A-Za-z0-9=:._-]{1,64}$")

# Runs inside git receive-pack, after the pack is received and before any ref moves (objects quarantined).
HOOK = r"""#!/bin/sh
ok=0
while read -r old new ref; do
  if [ "$ref" != "$SWARM_GATE_REF" ]; then
    echo "swarm: $ref refused: this credential pushes $SWARM_GATE_REF only" >&2; ok=1
  fi
  case $new in *[!0]*) ;; *) echo "swarm: deleting $ref refused" >&2; ok=1 ;; esac
done
exit $ok
"""


@dataclass(frozen=True)
class Gate:
    """What one gate serves: the staging repository, the one branch, the token and the URL path."""

    staging: Path
    branch: str
    token: str
    path: str = "/repo.git"

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"


def _git(*args: str, stdin: IO[bytes] | None = None, env: dict[str, str] | None = None) -> bytes:
    # binary in and out (packs), hence not monitor.world.proc, whose run() carries text
    done = subprocess.run(["git", *args], stdin=stdin if stdin is not None else subprocess.DEVNULL,
                          capture_output=True, timeout=GIT_TIMEOUT, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"git {args[0]} failed ({done.returncode}): "
                           f"{done.stderr.decode('utf-8', 'replace').strip()[-300:]}")
    return done.stdout


def prepare(staging: Path, objects: Path, branch: str, head: str, *, allow_force: bool = False) -> None:
    """A fresh staging bare repository at ``staging`` with ``branch`` at ``head`` and the main repository's
    ``objects`` borrowed (so a push sends only the agent's new objects), configured as the module says."""
    shutil.rmtree(staging, ignore_errors=True)
    _git("init", "--quiet", "--bare", str(staging))
    (staging / "objects" / "info" / "alternates").write_text(f"{objects}\n", encoding="utf-8")
    settings = {
        "receive.denyDeletes": "true", "receive.denyNonFastForwards": "false" if allow_force else "true",
        "receive.autogc": "false", "gc.auto": "0", "receive.fsckObjects": "true",
        "core.alternateRefsCommand": "true",  # advertise no ref of the main repository, not even as .have
        "core.hooksPath": str(staging / "hooks"),
    }
    for key, value in settings.items():
        _git("--git-dir", str(staging), "config", key, value)
    _git("--git-dir", str(staging), "update-ref", f"refs/heads/{branch}", head)
    _git("--git-dir", str(staging), "symbolic-ref", "HEAD", f"refs/heads/{branch}")
    hook = staging / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(HOOK, encoding="utf-8")
    hook.chmod(0o700)


def pkt_line(text: str) -> bytes:
    data = text.encode("utf-8")
    return f"{len(data) + 4:04x}".encode() + data


def authorized(header: str | None, token: str) -> bool:
    """Whether an ``Authorization: Basic`` header carries ``token`` as its password (any user name)."""
    if not header or not header.startswith("Basic ") or not token:
        return False
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    _, _, password = decoded.partition(b":")
    return hmac.compare_digest(password, token.encode("utf-8"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: GateServer

    def log_message(self, format: str, *args: object) -> None:
        log.info("gate %s: %s", self.address_string(), format % args)  # the request line: no credential in it

    def _send(self, code: int, body: bytes, kind: str = "text/plain; charset=utf-8",
              extra: dict[str, str] | None = None) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _allowed(self) -> bool:
        if authorized(self.headers.get("Authorization"), self.server.gate.token):
            return True
        self.close_connection = True
        self._send(401, b"swarm push gate: authentication required\n",
                   extra={"WWW-Authenticate": 'Basic realm="swarm push gate"'})
        return False

    def _env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if key in ("PATH", "LANG", "LC_ALL", "TZ")}
        env.update(SWARM_GATE_REF=self.server.gate.ref, GIT_CONFIG_NOSYSTEM="1", HOME=str(self.server.gate.staging))
        protocol = self.headers.get("Git-Protocol", "")
        if protocol and _PROTOCOL.fullmatch(protocol):
            env["GIT_PROTOCOL"] = protocol
        return env

    def do_GET(self) -> None:
        if not self._allowed():
            return
        url = urlsplit(self.path)
        if url.path != f"{self.server.gate.path}/info/refs":
            self._send(404, b"not found\n")
            return
        if parse_qs(url.query).get("service") != ["git-receive-pack"]:
            self._send(403, b"swarm push gate: pushes of the task's branch only (no fetch, no clone)\n")
            return
        try:
            refs = _git("receive-pack", "--stateless-rpc", "--advertise-refs", str(self.server.gate.staging),
                        env=self._env())
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            log.warning("gate: %s", exc)
            self._send(500, b"swarm push gate: the staging repository cannot be read\n")
            return
        body = pkt_line("# service=git-receive-pack\n") + b"0000" + refs
        self._send(200, body, "application/x-git-receive-pack-advertisement")

    def do_POST(self) -> None:
        if not self._allowed():
            return
        if urlsplit(self.path).path != f"{self.server.gate.path}/git-receive-pack":
            self.close_connection = True
            self._send(403 if self.path.endswith("/git-upload-pack") else 404, b"swarm push gate: pushes only\n")
            return
        with contextlib.ExitStack() as stack:
            body = stack.enter_context(tempfile.TemporaryFile())
            try:
                self._read_body(body)
            except ValueError as exc:
                self.close_connection = True
                self._send(400, f"swarm push gate: {exc}\n".encode())
                return
            body.seek(0)
            if self.headers.get("Content-Encoding", "").lower() in ("gzip", "x-gzip"):
                plain = stack.enter_context(tempfile.TemporaryFile())
                with gzip.GzipFile(fileobj=body) as unzipped:
                    shutil.copyfileobj(unzipped, plain)
                plain.seek(0)
                body = plain
            try:
                done = subprocess.run(["git", "receive-pack", "--stateless-rpc", str(self.server.gate.staging)],
                                      stdin=body, capture_output=True, timeout=GIT_TIMEOUT, check=False,
                                      env=self._env())
            except (OSError, subprocess.TimeoutExpired) as exc:
                log.warning("gate: receive-pack: %s", exc)
                self._send(500, b"swarm push gate: receive-pack failed\n")
                return
        if done.returncode != 0 and not done.stdout:
            self._send(500, b"swarm push gate: receive-pack failed\n")
            return
        self._send(200, done.stdout, "application/x-git-receive-pack-result")

    def _read_body(self, sink: IO[bytes]) -> None:
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline(64).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024).strip():
                        pass  # trailers
                    return
                total += size
                if total > MAX_BODY:
                    raise ValueError("push too large")
                sink.write(self.rfile.read(size))
                self.rfile.readline(8)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise ValueError("push too large")
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 16))
            if not chunk:
                raise ValueError("the request ended early")
            sink.write(chunk)
            length -= len(chunk)


class GateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], gate: Gate) -> None:
        self.gate = gate
        super().__init__(address, Handler)


def serve(gate: Gate, host: str = "127.0.0.1", port: int = 0) -> GateServer:
    """A started gate (its own thread); ``server.server_address[1]`` is its port; ``shutdown()`` stops it."""
    server = GateServer((host, port), gate)
    threading.Thread(target=server.serve_forever, name="push-gate", daemon=True).start()
    return server


def _ended(gate_dir: Path, started: float) -> bool:
    """The attempt is over: stopped by the monitor, its result written, its run directory gone, a later
    attempt of the task started (``runs/<task>/<n+1>``), or the gate has lived too long."""
    run_dir = gate_dir.parent
    if not run_dir.is_dir() or (gate_dir / STOP).exists() or (run_dir / "result.json").exists():
        return True
    if run_dir.name.isdigit() and any(p.name.isdigit() and int(p.name) > int(run_dir.name)
                                      for p in run_dir.parent.iterdir()):
        return True
    return time.monotonic() - started > MAX_LIFETIME


def main(argv: list[str] | None = None) -> int:
    """``python -m monitor.runtime.gitgate RUN_DIR``: serve the attempt's gate until it ends (detached by
    :func:`monitor.runtime.pushgate.start`); ``state.json`` says the port once it listens."""
    from monitor.private import take_secret_once, write_private

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m monitor.runtime.gitgate RUN_DIR", file=sys.stderr)
        return 2
    gate_dir = Path(args[0]) / GATE_DIR
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = json.loads((gate_dir / SPEC).read_text(encoding="utf-8"))
    token = (take_secret_once(gate_dir / TOKEN_FILE) or {}).get("token", "")
    if not token:
        print("push gate: no token was handed over", file=sys.stderr)
        return 1
    gate = Gate(Path(spec["staging"]), str(spec["branch"]), token, str(spec["path"]))
    server = serve(gate, str(spec["listen"]))
    fresh = gate_dir / f"{STATE}.{os.getpid()}"  # written whole, then renamed: a reader never sees it half-written
    write_private(fresh, json.dumps({"port": server.server_address[1], "pid": os.getpid()}))
    os.replace(fresh, gate_dir / STATE)
    started = time.monotonic()
    try:
        while not _ended(gate_dir, started):
            time.sleep(0.3)
    finally:
        server.shutdown()
        with contextlib.suppress(OSError, ValueError):  # only its own: a newer gate may have written it since
            if json.loads((gate_dir / STATE).read_text(encoding="utf-8")).get("pid") == os.getpid():
                (gate_dir / STATE).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
