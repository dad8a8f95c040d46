"""Control API settings (the ``control:`` section of config.yaml).

The same section tells the server where to listen and ``companion say`` (the
client) where to find it. Off loopback the API needs a token.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from companion import limits
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
    token: str | None = setting(
        None, doc=f"bearer token clients must send (Authorization: Bearer ...); >= {limits.TOKEN_MIN_CHARS} ASCII chars"
    )
    max_body_kb: int = setting(1024, check=positive, doc="largest request accepted (KiB)")
    max_text_chars: int = setting(limits.MAX_TEXT_CHARS, check=positive, doc="longest text POST /say accepts")
    request_timeout_s: float = setting(
        limits.REQUEST_TIMEOUT_S, check=positive, doc="a request must arrive within this (else 408)"
    )
    max_connections: int = setting(
        limits.MAX_CONNECTIONS, check=between(1, 1024), doc="connections served at once (more: 503)"
    )
    connect_timeout_s: float = setting(0.2, check=positive, doc="how long companion say waits to reach the daemon")

    def __post_init__(self) -> None:
        if self.socket is None and not is_loopback(self.host) and not self.token:
            raise ValueError(f"host {self.host} is not loopback: set a token too (control.token)")
        if self.token is not None:
            token_problem(self.token)

    @property
    def max_body_bytes(self) -> int:
        return self.max_body_kb * 1024


def token_problem(token: str) -> None:
    """Raise ValueError unless ``token`` is at least 16 printable ASCII characters (no spaces)."""
    if not token.strip():
        raise ValueError("token is empty: set a long random string, or null for none")
    if not all("!" <= c <= "~" for c in token):
        raise ValueError("token must be printable ASCII without spaces (e.g. from 'openssl rand -hex 16')")
    if len(token) < limits.TOKEN_MIN_CHARS:
        raise ValueError(
            f"token is {len(token)} characters; use at least {limits.TOKEN_MIN_CHARS} (e.g. 'openssl rand -hex 16')"
        )
