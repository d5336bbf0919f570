"""The systemd user units as `swarm systemd install` renders and writes them, checked line by line, by
systemd's own parser (`systemd-analyze verify`, where it exists) and, for the tmux unit's shell probes,
by running them against a real private tmux server."""

from __future__ import annotations

import itertools
import os
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import pytest

from monitor.world import proc
from monitor.world.tmux import Tmux
from orchestrator import systemd
from orchestrator.config import ConfigError, Settings
from orchestrator.systemd import Units, default_swarm_argv, install, render_units, timer_status, unit_names
from orchestrator.wiring import UsageError

# in CI the project's setup installs systemd: a missing systemd-analyze there fails the tests instead
NO_ANALYZE = shutil.which("systemd-analyze") is None and not os.environ.get("CI")

Parsed = dict[str, dict[str, list[str]]]
TMUX = shutil.which("tmux") or "/usr/bin/tmux"


def settings(**monitor: object) -> Settings:
    return Settings.model_validate({"monitor": {"tmux_socket": "fleet", **monitor}})


def parse(text: str) -> Parsed:
    """Sections -> key -> values, the way systemd reads a unit file (comments and blank lines skipped)."""
    sections: Parsed = {}
    current: dict[str, list[str]] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip().strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {line!r}"
        current.setdefault(key, []).append(value)
    return sections


def one(parsed: Parsed, section: str, key: str) -> str:
    values = parsed[section][key]
    assert len(values) == 1, (key, values)
    return values[0]


def render(repo: Path, config: Settings | None = None, argv: Sequence[str] | None = None) -> Units:
    return render_units(repo, config or settings(), argv or default_swarm_argv(), tmux=TMUX)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "shop"
    path.mkdir(parents=True)
    return path


def units_of(units: Units) -> dict[str, Parsed]:
    names = units.names
    return {kind: parse(units.files[getattr(names, kind)]) for kind in ("tmux", "service", "timer", "daemon")}


# -- what the units say -----------------------------------------------------------------------------


def test_the_tick_runs_the_real_swarm_in_the_repository_with_a_start_timeout(repo: Path) -> None:
    swarm = default_swarm_argv()
    assert Path(swarm[0]).is_absolute() and os.access(swarm[0], os.X_OK)
    units = render(repo)
    service = units_of(units)["service"]
    assert one(service, "Service", "Type") == "oneshot"
    assert one(service, "Service", "ExecStart") == f"{shlex.join(swarm)} monitor run-once"
    assert one(service, "Service", "WorkingDirectory") == str(repo)
    assert one(service, "Service", "TimeoutStartSec") == "10min"  # 2 x the default 5m interval
    assert one(service, "Service", "EnvironmentFile") == f"-{units.names.monitor_env}"
    assert one(service, "Service", "KillMode") == "control-group"
    assert one(service, "Unit", "Requires") == one(service, "Unit", "After") == units.names.tmux


def test_the_daemon_restarts_on_failure_and_lets_a_tick_finish_on_stop(repo: Path) -> None:
    units = render(repo, settings(interval="20m"))
    daemon = units_of(units)["daemon"]
    assert one(daemon, "Service", "ExecStart") == f"{shlex.join(default_swarm_argv())} monitor daemon"
    assert one(daemon, "Service", "Restart") == "on-failure"
    assert one(daemon, "Service", "KillSignal") == "SIGTERM"
    assert one(daemon, "Service", "TimeoutStopSec") == "40min"  # as long as a tick may take: 2 x 20m
    assert one(daemon, "Service", "WorkingDirectory") == str(repo)
    assert one(daemon, "Unit", "Requires") == units.names.tmux
    assert one(daemon, "Unit", "Conflicts") == units.names.timer
    assert one(daemon, "Install", "WantedBy") == "default.target"


@pytest.mark.parametrize(
    ("interval", "calendar"),
    [("5m", "*:0/5"), ("30s", "*:*:0/30"), ("15m", "*:0/15"), ("1h", "0/1:00:00"), ("6h", "0/6:00:00")],
)
def test_the_timer_follows_the_configured_interval_on_the_calendar(repo: Path, interval: str, calendar: str) -> None:
    units = render(repo, settings(interval=interval))
    timer = units_of(units)["timer"]
    assert one(timer, "Timer", "OnCalendar") == calendar
    assert one(timer, "Timer", "Persistent") == "true"
    assert one(timer, "Timer", "Unit") == units.names.service
    assert one(timer, "Install", "WantedBy") == "timers.target"
    assert "OnUnitActiveSec" not in timer["Timer"]


@pytest.mark.skipif(NO_ANALYZE, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize("interval", ["5m", "30s", "15m", "1h", "6h"])
def test_systemd_reads_the_calendar_as_evenly_spaced_ticks(repo: Path, interval: str) -> None:
    config = settings(interval=interval)
    calendar = one(units_of(render(repo, config))["timer"], "Timer", "OnCalendar")
    result = subprocess.run(["systemd-analyze", "calendar", "--iterations=5", calendar], capture_output=True,
                            text=True, env={**os.environ, "TZ": "UTC"}, check=True)
    stamps = [line.split(":", 1)[1].strip() for line in result.stdout.splitlines()
              if line.strip().startswith(("Next elapse:", "Iter. #"))]
    times = [datetime.strptime(stamp, "%a %Y-%m-%d %H:%M:%S %Z") for stamp in stamps]
    assert len(times) == 5
    assert {(b - a).total_seconds() for a, b in itertools.pairwise(times)} == {config.monitor.interval}


@pytest.mark.parametrize(("interval", "span"), [("7m", "7min"), ("90s", "90s"), ("45m", "45min"), ("5h", "5h")])
def test_an_interval_with_no_even_calendar_gets_a_monotonic_timer(repo: Path, interval: str, span: str) -> None:
    timer = units_of(render(repo, settings(interval=interval)))["timer"]
    assert one(timer, "Timer", "OnUnitActiveSec") == span
    assert one(timer, "Timer", "OnActiveSec") == "1min"  # the first tick after boot or enable
    assert "OnCalendar" not in timer["Timer"] and "Persistent" not in timer["Timer"]  # it would be ignored


def test_an_interval_under_a_second_is_a_config_error(repo: Path) -> None:
    with pytest.raises(ConfigError, match=r"monitor\.interval"):
        render(repo, settings(interval="0s"))


def test_the_tmux_unit_owns_the_server_on_the_configured_socket(repo: Path) -> None:
    units = render(repo)
    tmux = units_of(units)["tmux"]
    assert units.names.tmux == "swarm-tmux-fleet.service"
    assert one(tmux, "Service", "ExecStart") == f"{TMUX} -L fleet -D"
    assert one(tmux, "Service", "Type") == "exec"
    assert one(tmux, "Service", "KillMode") == "control-group"  # stopping it ends the agents: nothing else does
    assert one(tmux, "Service", "Restart") == "always"  # back at once, before a monitor could start one itself
    assert one(tmux, "Service", "EnvironmentFile") == f"-{units.names.agents_env}"
    assert "-L fleet -N start-server" in one(tmux, "Service", "ExecStartPre")
    assert "-L fleet -N start-server" in one(tmux, "Service", "ExecStartPost")
    assert one(tmux, "Install", "WantedBy") == "default.target"


def test_a_socket_path_is_made_absolute_against_the_repository(repo: Path) -> None:
    units = render(repo, settings(tmux_socket="run/agents.sock"))
    tmux = units_of(units)["tmux"]
    assert one(tmux, "Service", "ExecStart") == f"{TMUX} -S {repo / 'run' / 'agents.sock'} -D"
    assert units.names.tmux.startswith("swarm-tmux-agents-sock-")


def test_no_unit_hides_the_tmux_socket_or_the_home_directory(repo: Path) -> None:
    for kind, parsed in units_of(render(repo)).items():
        keys = {key for section in parsed.values() for key in section}
        assert not keys & {"PrivateTmp", "ProtectHome", "ProtectSystem", "TemporaryFileSystem", "InaccessiblePaths",
                           "PrivateUsers", "RootDirectory"}, kind
        if kind != "timer":
            assert one(parsed, "Service", "NoNewPrivileges") == "yes", kind


def test_units_carry_path_but_never_a_secret(repo: Path, tmp_path: Path) -> None:
    environ = {"HOME": str(tmp_path), "PATH": "/opt/agents/bin:/usr/bin:/opt/agents/bin",
               "GITHUB_TOKEN": "ghp_SECRETSECRET", "ANTHROPIC_API_KEY": "sk-ant-SECRET"}
    units = render_units(repo, settings(), default_swarm_argv(), tmux=TMUX, environ=environ)
    for text in units.files.values():
        assert "SECRET" not in text
    for kind in ("tmux", "service", "daemon"):
        assert units_of(units)[kind]["Service"]["Environment"] == ['"PATH=/opt/agents/bin:/usr/bin"']
    assert units.names.monitor_env == tmp_path / ".config" / "swarm" / f"monitor-{units.names.slug}.env"


def test_unit_names_tell_repositories_apart_and_share_the_socket_unit(tmp_path: Path) -> None:
    first, second = tmp_path / "a" / "Shop App", tmp_path / "b" / "Shop App"
    one_names, other_names = unit_names(first, settings()), unit_names(second, settings())
    assert one_names.slug.startswith("shop-app-") and other_names.slug.startswith("shop-app-")
    assert one_names.slug != other_names.slug
    assert one_names.timer == f"swarm-monitor-{one_names.slug}.timer"
    assert one_names.service == f"swarm-monitor-{one_names.slug}.service"
    assert one_names.daemon == f"swarm-monitor-daemon-{one_names.slug}.service"
    assert unit_names(first, settings()) == one_names  # stable: doctor finds what install wrote
    assert one_names.tmux == other_names.tmux and one_names.agents_env == other_names.agents_env
    assert one_names.monitor_env != other_names.monitor_env


def test_odd_paths_are_escaped_for_systemd(tmp_path: Path) -> None:
    repo = tmp_path / "my 100% $repo"
    argv = [sys.executable, "-c", "from orchestrator.cli import main; main()"]
    units = render(repo, argv=argv)
    service = units_of(units)["service"]
    assert one(service, "Service", "WorkingDirectory") == str(repo).replace("%", "%%")
    assert one(service, "Service", "ExecStart") == (
        f'{sys.executable} -c "from orchestrator.cli import main; main()" monitor run-once')
    assert "%%" in one(service, "Unit", "Description")
    with pytest.raises(UsageError, match="cannot be written into a systemd unit"):
        render(tmp_path / "bad\nname")


def test_default_swarm_argv_prefers_the_console_script_next_to_python(tmp_path: Path) -> None:
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.touch()
    assert default_swarm_argv(str(python)) == [str(python), "-c", "from orchestrator.cli import main; main()"]
    script = python.with_name("swarm")
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    assert default_swarm_argv(str(python)) == [str(script)]


# -- systemd's own parser ---------------------------------------------------------------------------


def verify(files: dict[str, str], where: Path) -> list[str]:
    """What `systemd-analyze verify` says about these files (lines about other units on this machine, e.g.
    the distribution's own user units, are not ours to judge)."""
    where.mkdir()
    for name, text in files.items():
        (where / name).write_text(text)
    with tempfile.TemporaryDirectory(prefix="sdv-") as runtime:  # short: socket paths must fit 108 bytes
        result = subprocess.run(
            ["systemd-analyze", "--user", "--man=no", "verify", *(str(where / name) for name in files)],
            capture_output=True, text=True, env={**os.environ, "XDG_RUNTIME_DIR": runtime}, timeout=60,
        )
    output = (result.stdout + result.stderr).splitlines()
    ours = [line for line in output if str(where) in line or any(name in line for name in files)]
    return ours if result.returncode == 0 else [f"exit status {result.returncode}", *output]


@pytest.mark.skipif(NO_ANALYZE, reason="systemd-analyze is not installed here")
@pytest.mark.parametrize(
    ("interval", "argv", "name"),
    [("5m", None, "shop"), ("7m", [sys.executable, "-c", "from orchestrator.cli import main; main()"], "a 100% $x")],
)
def test_systemd_analyze_verify_accepts_the_units_without_a_warning(
    tmp_path: Path, interval: str, argv: list[str] | None, name: str
) -> None:
    units = render(tmp_path / name, settings(interval=interval), argv)
    assert verify(dict(units.files), tmp_path / "units") == []
    # the check can fail: one bad value in the same files is reported
    broken = {**units.files, units.names.service: units.files[units.names.service].replace("=oneshot", "=oneshoot")}
    assert any("oneshoot" in line for line in verify(broken, tmp_path / "broken"))


# -- the tmux unit's probes, run for real -----------------------------------------------------------


def exec_argv(value: str) -> list[str]:
    return shlex.split(value.replace("$$", "$").replace("%%", "%"))


def test_the_tmux_unit_refuses_a_foreign_server_and_waits_until_its_own_answers(
    repo: Path, tmux_socket: str
) -> None:
    tmux = units_of(render(repo, settings(tmux_socket=tmux_socket)))["tmux"]["Service"]
    refuse, serve, ready = (exec_argv(tmux[key][0]) for key in ("ExecStartPre", "ExecStart", "ExecStartPost"))
    assert subprocess.run(refuse, capture_output=True, timeout=10).returncode == 0  # no server yet: go ahead
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    server = subprocess.Popen(serve, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              env=env)
    try:
        subprocess.run(ready, timeout=10, check=True)  # returns once the socket answers
        panes = Tmux(tmux_socket).panes()
        assert panes == {} and server.poll() is None  # a server with no session that stays up (exit-empty off)
        foreign = subprocess.run(refuse, capture_output=True, text=True, timeout=10)
        assert foreign.returncode == 1 and "already runs on this socket" in foreign.stderr
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_agents_get_the_tmux_units_environment_not_the_monitors(
    repo: Path, tmp_path: Path, tmux_socket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Why there are two env files: a session's environment is the server's, whoever asks for the session."""
    serve = exec_argv(units_of(render(repo, settings(tmux_socket=tmux_socket)))["tmux"]["Service"]["ExecStart"][0])
    unit_env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    server = subprocess.Popen(serve, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**unit_env, "ANTHROPIC_API_KEY": "from-agents-env"})
    try:
        monkeypatch.setenv("GITHUB_TOKEN", "from-monitor-env")  # the monitor's process asks for the session
        out = tmp_path / "env.txt"
        Tmux(tmux_socket).launch("probe", ["sh", "-c", f"env > {out}.tmp && mv {out}.tmp {out}"], tmp_path)
        deadline = time.monotonic() + 10
        while not out.exists():
            assert time.monotonic() < deadline, "the probe session never wrote its environment"
            time.sleep(0.05)
        seen = out.read_text().splitlines()
        assert "ANTHROPIC_API_KEY=from-agents-env" in seen
        assert not any(line.startswith("GITHUB_TOKEN=") for line in seen)
    finally:
        server.terminate()
        server.wait(timeout=10)


# -- install ----------------------------------------------------------------------------------------


def test_install_writes_the_units_and_creates_private_empty_env_files(repo: Path, tmp_path: Path) -> None:
    units = render(repo)
    unit_dir = tmp_path / "user-units"
    lines = install(units, unit_dir)
    for name, text in units.files.items():
        path = unit_dir / name
        assert path.read_text() == text
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        assert f"wrote {path}" in lines
    for env_path in (units.names.monitor_env, units.names.agents_env):
        assert stat.S_IMODE(env_path.stat().st_mode) == 0o600
        assert all(line.startswith("#") for line in env_path.read_text().splitlines())  # names only, no values
    assert {"#GITHUB_TOKEN=", "#ANTHROPIC_API_KEY="} <= set(units.names.monitor_env.read_text().splitlines())
    assert "#ANTHROPIC_API_KEY=" in units.names.agents_env.read_text().splitlines()
    text = "\n".join(lines)
    assert "systemctl --user daemon-reload" in text
    assert f"systemctl --user enable --now {units.names.tmux} {units.names.timer}" in text
    assert f"systemctl --user enable --now {units.names.daemon}" in text
    assert "loginctl enable-linger" in text
    assert not list(unit_dir.glob(".*"))  # no temporary file left behind


def test_install_defaults_to_the_xdg_user_unit_directory(repo: Path) -> None:
    units = render(repo)
    install(units)
    unit_dir = Path(os.environ["XDG_CONFIG_HOME"]) / "systemd" / "user"
    assert sorted(p.name for p in unit_dir.iterdir()) == sorted(units.files)


def test_install_never_overwrites_an_env_file_and_tightens_its_mode(repo: Path, tmp_path: Path) -> None:
    units = render(repo)
    env = units.names.monitor_env
    env.parent.mkdir(parents=True)
    env.write_text("GITHUB_TOKEN=github_pat_mine\n")
    env.chmod(0o644)
    lines = install(units, tmp_path / "units")
    assert env.read_text() == "GITHUB_TOKEN=github_pat_mine\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    assert f"kept {env}, mode tightened from 0644 to 0600" in lines


def test_reinstalling_rewrites_only_what_changed(repo: Path, tmp_path: Path) -> None:
    unit_dir = tmp_path / "units"
    install(render(repo), unit_dir)
    lines = install(render(repo, settings(interval="10m")), unit_dir)
    names = render(repo).names
    assert f"unchanged {unit_dir / names.tmux}" in lines
    assert f"wrote {unit_dir / names.timer}" in lines
    assert "OnCalendar=*:0/10" in (unit_dir / names.timer).read_text()


def test_print_renders_everything_and_writes_nothing(repo: Path, tmp_path: Path) -> None:
    units = render(repo)
    unit_dir = tmp_path / "units"
    lines = install(units, unit_dir, print_only=True)
    assert not unit_dir.exists()
    assert not units.names.monitor_env.exists() and not units.names.agents_env.exists()
    for name, text in units.files.items():
        assert f"# ---- {unit_dir / name}" in lines
        assert set(text.splitlines()) <= set(lines)
    assert lines[-1] == "(--print: nothing was written)"


def test_every_template_placeholder_is_filled(repo: Path) -> None:
    for name in ("swarm-tmux.service", "swarm-monitor.service", "swarm-monitor.timer", "swarm-monitor-daemon.service"):
        assert "${" in (systemd.TEMPLATES / name).read_text()  # the templates are in the source checkout
    for text in render(repo).files.values():
        assert "${" not in text and "##" not in text


# -- timer_status (for `swarm doctor`) --------------------------------------------------------------


class FakeSystemctl:
    """Canned `systemctl --user show` and `loginctl show-user` answers; records what was asked."""

    def __init__(self, show: str = "", *, returncode: int = 0, stderr: str = "", linger: str = "yes",
                 missing: bool = False) -> None:
        self.show, self.returncode, self.stderr, self.linger, self.missing = show, returncode, stderr, linger, missing
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> proc.Result:
        self.calls.append(list(argv))
        if self.missing:
            raise FileNotFoundError(2, "No such file or directory", argv[0])
        if argv[0] == "loginctl":
            return proc.Result(tuple(argv), 0, self.linger + "\n", "", 0.0)
        return proc.Result(tuple(argv), self.returncode, self.show, self.stderr, 0.0)


def show(timer: dict[str, str], service: dict[str, str], tmux: dict[str, str] | None = None) -> str:
    blocks = [timer, service, tmux or {"ActiveState": "active"}]
    return "\n\n".join("\n".join(f"{k}={v}" for k, v in block.items()) for block in blocks) + "\n"


ACTIVE = {"LoadState": "loaded", "ActiveState": "active", "UnitFileState": "enabled",
          "LastTriggerUSec": "Sun 2026-11-22 10:05:00 UTC", "NextElapseUSecRealtime": "Sun 2026-11-22 10:10:00 UTC"}


@pytest.fixture
def installed(repo: Path, tmp_path: Path) -> tuple[Path, Path]:
    unit_dir = tmp_path / "units"
    install(render(repo), unit_dir)
    return repo, unit_dir


def status_with(installed: tuple[Path, Path], fake: FakeSystemctl) -> tuple[bool, str]:
    repo, unit_dir = installed
    return timer_status(repo, settings(), unit_dir=unit_dir, systemctl=fake)


def with_ids(installed: tuple[Path, Path], timer: dict[str, str], service: dict[str, str],
             tmux: dict[str, str] | None = None) -> str:
    names = unit_names(installed[0], settings())
    return show({"Id": names.timer, **timer}, {"Id": names.service, **service},
                {"Id": names.tmux, **(tmux or {"ActiveState": "active"})})


def test_status_of_a_healthy_timer_gives_its_last_and_next_tick(installed: tuple[Path, Path]) -> None:
    fake = FakeSystemctl(with_ids(installed, ACTIVE, {"Result": "success", "ExecMainStatus": "0"}))
    good, line = status_with(installed, fake)
    names = unit_names(installed[0], settings())
    assert good
    assert line == (f"systemd: {names.timer} active, last tick Sun 2026-11-22 10:05:00 UTC, "
                    "next Sun 2026-11-22 10:10:00 UTC")
    assert fake.calls[0][:5] == ["systemctl", "--user", "show", names.timer, names.service]


@pytest.mark.parametrize(
    ("timer", "service", "tmux", "linger", "expected"),
    [
        ({**ACTIVE, "ActiveState": "inactive"}, {}, None, "yes", "is inactive — systemctl --user enable --now"),
        ({**ACTIVE, "LoadState": "not-found"}, {}, None, "yes", "systemctl --user daemon-reload"),
        ({**ACTIVE, "UnitFileState": "disabled"}, {}, None, "yes", "not enabled (gone after a reboot)"),
        (ACTIVE, {"Result": "exit-code", "ExecMainStatus": "1"}, None, "yes", "failed (exit-code, status 1)"),
        (ACTIVE, {"Result": "success"}, {"ActiveState": "failed"}, "yes", "failed, so no tick can start"),
        (ACTIVE, {"Result": "success"}, None, "no", "loginctl enable-linger"),
    ],
)
def test_status_names_what_is_wrong_and_the_fix(
    installed: tuple[Path, Path], timer: dict[str, str], service: dict[str, str], tmux: dict[str, str] | None,
    linger: str, expected: str,
) -> None:
    good, line = status_with(installed, FakeSystemctl(with_ids(installed, timer, service, tmux), linger=linger))
    assert not good
    assert expected in line


def test_status_of_a_timer_that_never_ran_is_fine(installed: tuple[Path, Path]) -> None:
    fake = FakeSystemctl(with_ids(installed, {**ACTIVE, "LastTriggerUSec": "n/a"}, {"Result": "success"}))
    good, line = status_with(installed, fake)
    assert good and "last tick never" in line


def test_status_when_systemctl_cannot_be_asked(installed: tuple[Path, Path]) -> None:
    good, line = status_with(installed, FakeSystemctl(returncode=1, stderr="Failed to connect to bus: No medium found"))
    assert good and "cannot be asked here (Failed to connect to bus: No medium found)" in line
    good, line = status_with(installed, FakeSystemctl(missing=True))
    assert good and "cannot be asked here" in line


def test_status_without_units_says_how_to_install(repo: Path, tmp_path: Path) -> None:
    fake = FakeSystemctl()
    good, line = timer_status(repo, settings(), unit_dir=tmp_path / "none", systemctl=fake)
    assert not good and "swarm systemd install" in line
    assert fake.calls == []  # nothing to ask systemd about


def test_status_of_the_daemon_when_only_the_daemon_is_installed(repo: Path, tmp_path: Path) -> None:
    units = render(repo)
    unit_dir = tmp_path / "units"
    install(units, unit_dir)
    (unit_dir / units.names.timer).unlink()
    daemon = {"Id": units.names.daemon, **ACTIVE, "ActiveEnterTimestamp": "Sun 2026-11-22 09:00:00 UTC"}
    good, line = timer_status(repo, settings(), unit_dir=unit_dir,
                              systemctl=FakeSystemctl(show(daemon, {"Id": units.names.service})))
    assert good and line == f"systemd: {units.names.daemon} active since Sun 2026-11-22 09:00:00 UTC"


def test_preflight_notes_a_server_already_on_the_socket(tmux_socket: str, tmp_path: Path) -> None:
    config = settings(tmux_socket=tmux_socket)
    assert systemd.preflight(config) == []  # tmux 3.3 here, no server yet
    Tmux(tmux_socket).launch("idle", ["sleep", "30"], tmp_path)
    (note,) = systemd.preflight(config)
    assert f"already runs on socket {tmux_socket}" in note
