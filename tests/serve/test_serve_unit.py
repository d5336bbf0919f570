"""`swarm systemd install --serve`: the swarm-serve-<repo>.service unit, read the way systemd reads it and
checked by `systemd-analyze verify`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from orchestrator import systemd
from orchestrator.systemd import default_swarm_argv, install, render_units, serve_unit
from tests.orchestrator.test_systemd import TMUX, one, parse, settings, verify

NO_ANALYZE = shutil.which("systemd-analyze") is None and not os.environ.get("CI")


def test_the_serve_unit_runs_swarm_serve_restarts_on_failure_and_conflicts_with_the_others(tmp_path: Path) -> None:
    repo = tmp_path / "src" / "shop"
    repo.mkdir(parents=True)
    plain = render_units(repo, settings(), default_swarm_argv(), tmux=TMUX)
    assert serve_unit(plain.names) not in plain.files, "only with --serve"
    units = render_units(repo, settings(), default_swarm_argv(), tmux=TMUX, serve=True)
    name = serve_unit(units.names)
    assert name == f"swarm-serve-{units.names.slug}.service"
    unit = parse(units.files[name])
    assert one(unit, "Service", "ExecStart").split()[-1] == "serve"
    assert one(unit, "Service", "ExecStart").split()[0] == default_swarm_argv()[0]
    assert one(unit, "Service", "Restart") == "on-failure"
    assert one(unit, "Service", "KillSignal") == "SIGTERM"
    assert one(unit, "Service", "WorkingDirectory") == str(repo)
    assert one(unit, "Unit", "Conflicts").split() == [units.names.timer, units.names.daemon]
    assert one(unit, "Unit", "Requires") == units.names.tmux
    assert "${" not in units.files[name] and "##" not in units.files[name]
    assert "${" in (systemd.TEMPLATES / "swarm-serve.service").read_text()
    lines = install(units, tmp_path / "units")
    assert (tmp_path / "units" / name).is_file()
    assert any(f"enable --now {units.names.tmux} {name}" in line for line in lines)
    assert any(f"disable --now {units.names.timer}" in line for line in lines)


@pytest.mark.skipif(NO_ANALYZE, reason="systemd-analyze is not installed here")
def test_systemd_analyze_verify_accepts_the_serve_unit(tmp_path: Path) -> None:
    units = render_units(tmp_path / "shop", settings(), default_swarm_argv(), tmux=TMUX, serve=True)
    assert verify(dict(units.files), tmp_path / "units") == []
    name = serve_unit(units.names)
    broken = {**units.files, name: units.files[name].replace("=on-failure", "=on-failyre")}
    assert any("on-failyre" in line for line in verify(broken, tmp_path / "broken"))
