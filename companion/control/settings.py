"""Control API settings (the ``control:`` section of config.yaml).

The same section tells the server where to listen and ``companion say`` (the
client) where to find it. Off loopback the API needs a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from companion.settings import between, positive, setting


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback IP literals (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    import ipaddress

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class ControlSettings:
    enabled: bool = setting(True, doc="serve the local control API (companion say talks to it)")
    host: str = setting("127.0.0.1", doc="address to listen on; anything but loopback needs a token")
    port: int = setting(8765, check=between(1, 65535), doc="TCP port")
    socket: Path | None = setting(None, doc="Unix socket (mode 0600) to serve on instead of TCP; null = TCP")
    token: str | None = setting(None, doc="bearer token clients must send (Authorization: Bearer ...)")
    max_body_kb: int = setting(1024, check=positive, doc="largest request accepted (KiB)")
    connect_timeout_s: float = setting(0.2, check=positive, doc="how long companion say waits to reach the daemon")

    def __post_init__(self) -> None:
        if self.socket is None and not is_loopback(self.host) and not self.token:
            raise ValueError(f"host {self.host} is not loopback: set a token too (control.token)")
        if self.token is not None and not self.token.strip():
            raise ValueError("token is empty: set a long random string, or null for none")

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_kb * 1024
