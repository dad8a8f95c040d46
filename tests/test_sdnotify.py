"""sd_notify messages arrive on a real datagram socket, path or abstract."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from companion.sdnotify import Notifier


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    yield sock, str(path)
    sock.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().split("\n")


def test_ready_status_watchdog_stopping_reach_the_socket(listener) -> None:
    sock, path = listener
    n = Notifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("listening as Rocky")
    assert receive(sock) == ["READY=1", "STATUS=listening as Rocky"]
    n.status("thinking\nabout it")
    assert receive(sock) == ["STATUS=thinking about it"]
    n.watchdog()
    assert receive(sock) == ["WATCHDOG=1"]
    n.stopping()
    assert receive(sock) == ["STOPPING=1"]
    n.close()


def test_reloading_carries_the_monotonic_time(listener) -> None:
    sock, path = listener
    n = Notifier({"NOTIFY_SOCKET": path})
    n.reloading()
    fields = receive(sock)
    assert fields[0] == "RELOADING=1"
    key, value = fields[1].split("=")
    assert key == "MONOTONIC_USEC" and int(value) > 0
    n.close()


def test_abstract_socket_names_start_with_at() -> None:
    name = f"companion-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    sock.settimeout(2.0)
    n = Notifier({"NOTIFY_SOCKET": "@" + name})
    assert n.ready()
    assert receive(sock) == ["READY=1"]
    n.close()
    sock.close()


def test_without_systemd_every_call_is_a_quiet_no_op() -> None:
    n = Notifier({})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and not n.stopping()
    assert n.watchdog_interval_s is None


def test_a_vanished_socket_is_logged_once_and_never_raises(tmp_path: Path, caplog) -> None:
    n = Notifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert not n.ready()
    assert not n.watchdog()
    assert caplog.text.count("cannot notify systemd") == 1


@pytest.mark.parametrize(
    ("env", "timeout"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 30.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}, None),  # for another process
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_timeout_from_the_environment(env: dict[str, str], timeout: float | None) -> None:
    n = Notifier({"NOTIFY_SOCKET": "/run/x", **env})
    assert n.watchdog_timeout_s == timeout
    assert n.watchdog_interval_s == (None if timeout is None else timeout / 2)
