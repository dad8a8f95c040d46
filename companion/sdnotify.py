"""systemd's notify protocol: tell the service manager we are ready, alive, stopping.

A datagram of ``KEY=VALUE`` lines sent to the socket named by ``$NOTIFY_SOCKET``
(a path, or ``@name`` for an abstract socket). Without that variable (not run by
systemd, or ``Type=simple``) every call is a no-op, so the daemon calls these
unconditionally. See sd_notify(3).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping

_log = logging.getLogger(__name__)


class Notifier:
    """Sends sd_notify messages; never raises (a lost notification is logged once)."""

    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        self._address: str | bytes | None = None
        if address.startswith("@"):
            self._address = b"\0" + address[1:].encode()
        elif address.startswith("/"):
            self._address = address
        elif address:
            _log.warning("NOTIFY_SOCKET=%r is not a socket path; systemd will not hear from us", address)
        self._watchdog_s = _watchdog_seconds(env)
        self._socket: socket.socket | None = None
        self._failed = False

    @property
    def enabled(self) -> bool:
        """True when running under systemd with a notify socket."""
        return self._address is not None

    @property
    def watchdog_timeout_s(self) -> float | None:
        """``WatchdogSec=`` of the unit (for this process), or None when there is no watchdog."""
        return self._watchdog_s

    @property
    def watchdog_interval_s(self) -> float | None:
        """How often to call :meth:`watchdog`: half the timeout, as sd_watchdog_enabled(3) advises."""
        return None if self._watchdog_s is None else self._watchdog_s / 2

    def notify(self, *fields: str) -> bool:
        """Send ``KEY=VALUE`` fields in one datagram; True if it was sent."""
        if self._address is None:
            return False
        data = "\n".join(fields).encode()
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                )
            self._socket.sendto(data, self._address)
        except OSError as exc:
            if not self._failed:
                _log.warning("cannot notify systemd (%s): %s", self._describe(), exc)
                self._failed = True
            return False
        return True

    def ready(self, status: str | None = None) -> bool:
        """Startup is complete (``Type=notify``: systemd waits for this)."""
        return self.notify("READY=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def status(self, text: str) -> bool:
        """Free-form status shown by ``systemctl status``."""
        return self.notify(f"STATUS={_one_line(text)}")

    def watchdog(self) -> bool:
        """Still alive (call every :attr:`watchdog_interval_s` while healthy)."""
        return self.notify("WATCHDOG=1")

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *([f"STATUS={_one_line(status)}"] if status else []))

    def reloading(self) -> bool:
        """A reload (e.g. a new config or persona) starts; call :meth:`ready` when done."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def _describe(self) -> str:
        if isinstance(self._address, bytes):
            return "@" + self._address[1:].decode(errors="replace")
        return str(self._address)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (we were forked or exec'd by the real target)
    try:
        value = int(usec)
    except ValueError:
        _log.warning("WATCHDOG_USEC=%r is not a number; watchdog pings disabled", usec)
        return None
    return value / 1_000_000 if value > 0 else None
