"""What runs first in an attempt's container, and what its end means.

Why the agent's argv runs under a small POSIX ``sh`` entry instead of the ``swarm agent-run`` wrapper: a
user's image (node for Claude Code, say) has no Python with swarm's dependencies, and mounting the host's
would tie it to the host's Python. The entry runs the setup once per worktree, hands a ``forge_token``
profile's token to the agent only (:mod:`monitor.runtime.secretfile`), feeds the prompt, appends the
output to the run's ``output.log`` (so progress, ``swarm logs`` and the evidence read the same file as
with tmux), and after the agent exits writes the cgroup's memory figures. The exit code, times and OOM
flag come from the engine; :func:`exit_record` turns them into what ``result.json`` holds.

An out-of-memory kill is its own evidence: exit 137 alone also means "killed from outside" (that is a
death, retried as one), so it counts as OOM only with the memory figures near the limit or the engine's
OOM flag (which reads false on cgroup v1 hosts, hence the figures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from monitor.world.tmux import Pane

PHASE_FILE = "phase"
MEMORY_FILE = "memory"
ERROR_FILE = "error"
SECRET_ENV_FILE = ".secret-env"  # a forge_token profile's one-shot NAME=VALUE file in the run directory
OOM_SHARE = 0.9  # a SIGKILLed agent whose peak memory reached this share of the limit ran out of memory


@dataclass(frozen=True)
class ContainerPane(Pane):
    """A container as the monitor sees it: a pane, plus what the engine says about how it ended."""

    oom_killed: bool = field(default=False, compare=False)
    started_at: str = field(default="", compare=False)
    finished_at: str = field(default="", compare=False)

# $1 run dir, $2 prompt mode ("stdin" | "file" | "none"), then the agent's argv. A profile's forge token
# (SWARM_SECRET_FILE names its one-shot file, NAME=VALUE lines) is read and the file deleted first, kept in
# unexported shell variables (not for the setup command) and exported only in the agent's own subshell.
ENTRY = r"""set -u
run=$1; mode=$2; shift 2
log="$run/output.log"
setup=${SWARM_SETUP:-}; marker=${SWARM_SETUP_MARKER:-}; secret=${SWARM_SECRET_FILE:-}
unset SWARM_SETUP SWARM_SETUP_MARKER SWARM_SECRET_FILE
names=
if [ -n "$secret" ]; then
  if [ ! -r "$secret" ]; then
    echo launch > "$run/phase"
    echo "the forge token was not handed over (its one-shot file was gone: the monitor removes it when the \
container does not start in time); the next attempt gets a fresh one" > "$run/error"
    exit 125
  fi
  exec 3<"$secret"
  rm -f "$secret"
  while IFS= read -r line <&3 || [ -n "$line" ]; do
    name=${line%%=*}
    case $name in ''|[!A-Za-z_]*|*[!A-Za-z0-9_]*) continue ;; esac
    eval "secret_$name=\${line#*=}"
    names="$names $name"
  done
  exec 3<&-
fi
give() { for n in $names; do eval "export $n=\"\$secret_$n\""; done; }
if [ -n "$setup" ] && [ ! -e "$marker" ]; then
  echo setup > "$run/phase"
  printf '$ %s\n' "$setup" >> "$log"
  sh -c "$setup" </dev/null >>"$log" 2>&1
  code=$?
  [ "$code" -eq 0 ] || exit "$code"
  touch "$marker"
fi
echo agent > "$run/phase"
if [ "$mode" = stdin ]; then (give; exec "$@") <"$run/prompt.md" >>"$log" 2>&1
else (give; exec "$@") </dev/null >>"$log" 2>&1; fi
code=$?
cg=$(sed -n 's/^[0-9]*:[^:]*memory[^:]*:\(.*\)$/\1/p' /proc/self/cgroup 2>/dev/null | head -n 1)
for d in "/sys/fs/cgroup/memory$cg" /sys/fs/cgroup/memory; do
  if [ -r "$d/memory.max_usage_in_bytes" ]; then
    { echo "peak $(cat "$d/memory.max_usage_in_bytes")"; echo "limit $(cat "$d/memory.limit_in_bytes")"
      echo "failcnt $(cat "$d/memory.failcnt")"; sed -n 's/^oom_kill /oom_kill /p' "$d/memory.oom_control"
    } > "$run/memory" 2>/dev/null
    break
  fi
done
if [ ! -s "$run/memory" ] && [ -r /sys/fs/cgroup/memory.max ]; then
  { echo "peak $(cat /sys/fs/cgroup/memory.peak 2>/dev/null || echo 0)"; echo "limit $(cat /sys/fs/cgroup/memory.max)"
    sed -n 's/^oom_kill /oom_kill /p' /sys/fs/cgroup/memory.events; } > "$run/memory" 2>/dev/null
fi
exit "$code"
"""



def run_dir_of(argv: Sequence[str]) -> Path | None:
    """The run directory of an attempt's container command (the entry's, or the remote host's wrapping of
    it: ``sh -c SCRIPT swarm-remote WORKTREE RUN_DIR ...``); None for any other command."""
    argv = list(argv)
    if len(argv) > 5 and argv[:4] == ["/bin/sh", "-c", ENTRY, "swarm-entry"]:
        return Path(argv[4])
    if len(argv) > 6 and argv[:2] == ["/bin/sh", "-c"] and argv[3] == "swarm-remote":
        return Path(argv[5])
    return None


def entry_argv(run_dir: Path, prompt_mode: str, argv: Sequence[str]) -> list[str]:
    """The container's command: the sh entry above, then the agent's argv (never through a shell)."""
    return ["/bin/sh", "-c", ENTRY, "swarm-entry", str(run_dir), prompt_mode, *argv]


def memory_facts(run_dir: Path) -> dict[str, int]:
    """What the entry wrote about the container's memory after the agent exited ({} if nothing)."""
    try:
        text = (run_dir / MEMORY_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    facts: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            facts[key] = int(value.strip())
    return facts


def oom_evidence(run_dir: Path, exit_code: int, oom_flag: bool) -> str:
    """One line saying the agent was killed for lack of memory, or "" when nothing says so."""
    if exit_code not in (137, -9):
        return ""
    facts = memory_facts(run_dir)
    peak, limit = facts.get("peak", 0), facts.get("limit", 0)
    counted = facts.get("oom_kill", 0) > 0 or (limit > 0 and peak >= OOM_SHARE * limit)
    if not counted and not oom_flag:
        return ""
    mib = 1024 * 1024
    figures = f"peak {peak // mib} MiB of its {limit // mib} MiB limit" if limit else "the engine's OOM flag"
    return (f"out of memory: the container's memory limit was reached ({figures}) and the kernel killed the agent "
            "(exit 137); use less memory (smaller test runs, fewer parallel jobs) or raise [runtime.container] memory")


def exit_record(run_dir: Path, pane: ContainerPane, parser: str, started_at: datetime) -> dict[str, Any]:
    """What ``result.json`` would hold for an exited container: phase, exit code, times, error and the
    profile parser's report of the output log."""
    from monitor.agent_output import parse_output
    from monitor.redact import redact

    code = pane.dead_status if pane.dead_status is not None else -1
    killed = code in (137, -9)
    try:
        phase = (run_dir / PHASE_FILE).read_text(encoding="utf-8").strip() or "launch"
    except OSError:
        # the entry never ran: killed before it could (a death), or it cannot run (no /bin/sh, a mount refused)
        phase = "agent" if killed else "launch"
    error, killed_by = oom_evidence(run_dir, code, pane.oom_killed), ""
    if killed and not error:
        killed_by = "SIGKILL"  # killed from outside (podman kill, a reboot): a death, retried as one
    if phase == "agent" and code == 127 and not error:
        phase, error = "launch", "the agent's command was not found in the container image ([runtime.container] image)"
    if phase == "launch" and not error:
        try:  # the entry says why it stopped before the agent (a forge token it was not handed)
            error = (run_dir / ERROR_FILE).read_text(encoding="utf-8", errors="replace").strip()[:500]
        except OSError:
            error = f"the container exited {code} before its entry ran (does the image have /bin/sh?)"
    try:
        text = redact((run_dir / "output.log").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        text = ""
    report = parse_output(parser, text, code) if phase == "agent" else None
    ended = pane.finished_at or datetime.now(UTC).isoformat()
    return {
        "phase": phase,
        "exit_code": code,
        "killed_by": killed_by,
        "started_at": pane.started_at or started_at.isoformat(),
        "ended_at": ended,
        "error": error or (report.error if report else ""),
        "report": report.model_dump() if report else None,
    }
