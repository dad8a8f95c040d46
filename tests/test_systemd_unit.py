"""The systemd unit: what it promises, and that systemd itself accepts it."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from companion.cli import service
from companion.cli.service import REFERENCE_EXEC, render_unit

REPO_UNIT = Path(__file__).resolve().parent.parent / "systemd" / "companion.service"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed (apt-get install systemd)")


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_repo_unit_is_what_install_renders() -> None:
    assert REPO_UNIT.read_text(encoding="utf-8") == render_unit(REFERENCE_EXEC), (
        "systemd/companion.service is stale: regenerate it from companion.cli.service.render_unit"
    )


def test_system_unit_is_a_supervised_sandboxed_service() -> None:
    d = directives(render_unit(Path("/opt/companion/.venv/bin/companion")))
    assert d["Type"] == ["notify"]
    assert d["ExecStart"] == ["/opt/companion/.venv/bin/companion run"]
    assert d["ExecReload"] == ["/bin/kill -HUP $MAINPID"]  # the daemon reloads config and persona
    assert d["Restart"] == ["on-failure"]
    assert int(d["WatchdogSec"][0]) > 0
    assert 3 < float(d["TimeoutStopSec"][0]) < 10
    assert d["User"] == ["companion"]
    assert d["SupplementaryGroups"] == ["audio gpio"]
    assert d["StateDirectory"] == ["companion"]
    assert d["ProtectSystem"] == ["strict"]
    assert d["NoNewPrivileges"] == ["yes"] and d["PrivateTmp"] == ["yes"]
    assert "PrivateDevices" not in d  # it would hide /dev/snd and /dev/gpiochip*
    assert d["DevicePolicy"] == ["closed"]
    assert sorted(d["DeviceAllow"]) == ["char-alsa rw", "char-gpiochip rw"]
    assert d["WantedBy"] == ["multi-user.target"]


def test_user_unit_has_no_user_lines_and_starts_with_the_session() -> None:
    d = directives(render_unit(Path("/home/pi/companion/.venv/bin/companion"), user_unit=True))
    for system_only in ("User", "Group", "SupplementaryGroups", "DevicePolicy", "ProtectSystem"):
        assert system_only not in d
    assert d["Type"] == ["notify"] and d["WantedBy"] == ["default.target"]


def test_a_venv_in_a_home_directory_stays_readable() -> None:
    d = directives(render_unit(Path("/home/pi/companion/.venv/bin/companion")))
    assert d["ProtectHome"] == ["read-only"]
    assert directives(render_unit(REFERENCE_EXEC))["ProtectHome"] == ["yes"]


def test_odd_characters_in_the_path_are_escaped() -> None:
    d = directives(render_unit(Path("/opt/my robot/100%/bin/companion")))
    assert d["ExecStart"] == ['"/opt/my robot/100%%/bin/companion" run']


def installed_unit(tmp_path: Path, user: bool, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install into a temporary root exactly as `companion service install --root` does."""
    if not service.companion_script().exists():
        pytest.skip(f"{service.companion_script()} is missing: pip install -e . first")
    args = argparse.Namespace(user=user, dry_run=False, root=str(tmp_path / "root"), service_user="companion")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/home/someone/.config")
    assert service.install(args) == 0
    sub = "home/someone/.config/systemd/user" if user else "etc/systemd/system"
    return tmp_path / "root" / sub / "companion.service"


def verify(unit: Path, tmp_path: Path, user: bool = False) -> subprocess.CompletedProcess[str]:
    runtime = tmp_path / "runtime"
    runtime.mkdir(mode=0o700, exist_ok=True)
    cmd = [str(ANALYZE), "verify", "--man=no", *(["--user"] if user else []), str(unit)]
    env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime)}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, check=False)


@needs_analyze
def test_systemd_analyze_verify_accepts_the_system_unit(tmp_path: Path, monkeypatch) -> None:
    result = verify(installed_unit(tmp_path, False, monkeypatch), tmp_path)
    assert result.returncode == 0, result.stderr
    # verify exits 0 even for ignored lines, so any complaint about our unit is a failure
    assert "companion.service" not in result.stdout + result.stderr, result.stderr


@needs_analyze
def test_systemd_analyze_verify_accepts_the_user_unit(tmp_path: Path, monkeypatch) -> None:
    result = verify(installed_unit(tmp_path, True, monkeypatch), tmp_path, user=True)
    assert result.returncode == 0, result.stderr
    assert "companion.service" not in result.stdout + result.stderr, result.stderr


@needs_analyze
def test_verify_does_catch_a_broken_unit(tmp_path: Path) -> None:
    unit = tmp_path / "companion.service"
    text = render_unit(tmp_path / "no-such-venv" / "companion").replace("ProtectSystem=strict", "ProtectSystem=x")
    unit.write_text(text, encoding="utf-8")
    result = verify(unit, tmp_path)
    complaints = result.stdout + result.stderr
    assert "is not executable" in complaints
    assert "ProtectSystem" in complaints or "protect system" in complaints
