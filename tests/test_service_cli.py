"""`companion service install` and `companion doctor`."""

from __future__ import annotations

import glob
import os
import stat
from pathlib import Path

import pytest

from companion.cli import main
from companion.cli.service import (
    Check,
    check_gpio,
    check_models,
    check_service,
    companion_script,
    report,
)
from companion.config import load_config


def unit_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


# ---- service install -----------------------------------------------------------------


def test_dry_run_prints_the_unit_and_writes_nothing(tmp_path: Path, capsys) -> None:
    root = tmp_path / "root"
    assert main(["service", "install", "--dry-run", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"ExecStart={companion_script()} run" in out
    assert "Type=notify" in out and "User=companion" in out
    assert "sudo systemctl daemon-reload" in out and "sudo systemctl enable --now companion" in out
    assert not root.exists()


def test_install_writes_the_unit_and_a_loadable_config(tmp_path: Path, capsys) -> None:
    root = tmp_path / "root"
    assert main(["service", "install", "--root", str(root)]) == 0
    unit = root / "etc/systemd/system/companion.service"
    config = root / "etc/companion/config.yaml"
    assert f"ExecStart={companion_script()} run" in unit_lines(unit)
    assert stat.S_IMODE(unit.stat().st_mode) == 0o644
    assert load_config(config).config.gpio.enabled is False
    out = capsys.readouterr().out
    assert f"wrote {unit}" in out and f"wrote {config}" in out


def test_reinstall_keeps_the_users_config_and_refreshes_the_unit(tmp_path: Path, capsys) -> None:
    root = tmp_path / "root"
    main(["service", "install", "--root", str(root)])
    config = root / "etc/companion/config.yaml"
    unit = root / "etc/systemd/system/companion.service"
    config.write_text("persona: rocky\n", encoding="utf-8")
    unit.write_text("[Service]\nExecStart=/old/venv/bin/companion run\n", encoding="utf-8")
    assert main(["service", "install", "--root", str(root)]) == 0
    assert config.read_text(encoding="utf-8") == "persona: rocky\n"
    assert f"ExecStart={companion_script()} run" in unit_lines(unit)
    assert f"kept {config}" in capsys.readouterr().out


def test_install_root_can_come_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("COMPANION_INSTALL_ROOT", str(tmp_path / "pkg"))
    assert main(["service", "install"]) == 0
    assert (tmp_path / "pkg/etc/systemd/system/companion.service").exists()


def test_user_install_goes_to_the_users_systemd_directory(isolated_home: Path, capsys) -> None:
    assert main(["service", "install", "--user"]) == 0
    unit = isolated_home / "xdg-config/systemd/user/companion.service"
    lines = unit_lines(unit)
    assert not [line for line in lines if line.startswith(("User=", "Group=", "SupplementaryGroups="))]
    assert "WantedBy=default.target" in lines
    assert (isolated_home / "xdg-config/companion/config.yaml").exists()
    out = capsys.readouterr().out
    assert "systemctl --user enable --now companion" in out and "enable-linger" in out


def test_system_install_without_root_says_how(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("COMPANION_INSTALL_ROOT", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["service", "install"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("companion: writing /etc/systemd/system/companion.service needs root")
    assert "--user" in err


# ---- doctor --------------------------------------------------------------------------


def test_bundled_models_are_found() -> None:
    checks = check_models()
    assert [c.name for c in checks] == ["model stt", "model llm", "model tts"]
    assert all(c.ok for c in checks), [c.line() for c in checks]


def test_gpio_check_explains_each_problem(tmp_path: Path) -> None:
    assert check_gpio(False, False).ok
    assert check_gpio(True, True).ok
    none = check_gpio(True, False, chips=str(tmp_path / "gpiochip*"))
    assert not none.ok and "gpio.enabled: false" in none.fix
    (tmp_path / "gpiochip0").write_text("")
    found = check_gpio(True, False, chips=str(tmp_path / "gpiochip*"))
    has_pin_library = any(__import__("importlib").util.find_spec(m) for m in ("lgpio", "RPi"))
    assert found.ok == has_pin_library
    if not has_pin_library:
        assert "pip install lgpio" in found.fix


def fake_systemctl(tmp_path: Path, state: str) -> str:
    script = tmp_path / "systemctl"
    script.write_text(f"#!/bin/sh\necho {state}\n[ {state} = active ]\n", encoding="utf-8")
    script.chmod(0o755)
    return str(script)


@pytest.mark.parametrize(("state", "ok"), [("active", True), ("failed", False), ("inactive", True)])
def test_service_check_reports_the_unit_state(tmp_path: Path, state: str, ok: bool) -> None:
    check = check_service(fake_systemctl(tmp_path, state), booted_dir=str(tmp_path))
    assert check.ok is ok
    if not ok:
        assert "journalctl -u companion" in check.fix


def test_service_check_is_skipped_without_systemd(tmp_path: Path) -> None:
    check = check_service(fake_systemctl(tmp_path, "failed"), booted_dir=str(tmp_path / "nope"))
    assert check.ok and "skipped" in check.detail


def test_report_prints_one_line_per_check_and_fails_on_any_problem() -> None:
    out: list[str] = []
    checks = [Check("a", True, "fine"), Check("b", False, "broken", "do this")]
    assert report(checks, out.append) == 1
    assert out == ["ok       a: fine", "PROBLEM  b: broken -- fix: do this"]
    assert report(checks[:1], out.append) == 0


def test_doctor_finds_a_missing_microphone(tmp_config, isolated_home, capsys) -> None:
    config = tmp_config("audio:\n  input_device: no-such-microphone-xyz\n")
    assert main(["doctor", "--config", str(config)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"ok       config: {config}"
    mic = next(line for line in lines if line.split()[1] == "microphone:")
    assert mic.startswith("PROBLEM  microphone: 'no-such-microphone-xyz' not found")
    assert "arecord -l" in mic
    assert [line.split()[1] for line in lines] == [
        "config:",
        "portaudio:",
        "microphone:",
        "speaker:",
        "model",
        "model",
        "model",
        "gpio:",
        "service:",
    ]


@pytest.mark.skipif(bool(glob.glob("/dev/gpiochip*")), reason="this machine has GPIO")
def test_doctor_flags_gpio_enabled_on_a_machine_without_it(tmp_config, isolated_home, capsys) -> None:
    config = tmp_config("gpio:\n  enabled: true\n")
    assert main(["doctor", "--config", str(config)]) == 1
    gpio = next(line for line in capsys.readouterr().out.splitlines() if line.split()[1] == "gpio:")
    assert gpio.startswith("PROBLEM  gpio: no /dev/gpiochip*")


def test_doctor_reports_a_broken_config_and_carries_on(tmp_config, isolated_home, capsys) -> None:
    config = tmp_config("gpio:\n  enabeld: true\n")
    assert main(["doctor", "--config", str(config)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"PROBLEM  config: {config}: gpio.enabeld: unknown key")
    assert len(lines) == 9
