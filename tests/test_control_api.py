"""The control API against a real running server (real Piper voice, free loopback port or Unix socket)."""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import socket
import stat
import threading
import time
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from companion.audio.sinks import FileSink
from companion.config import Config, load_config
from companion.control.client import ControlClient, ControlRequestError, DaemonNotRunning
from companion.control.guards import AuthGate
from companion.control.server import ControlServer
from companion.control.settings import ControlSettings
from companion.control.tts_backend import TtsBackend
from companion.errors import UserError
from companion.settings import ConfigError, build

ROCKY = """\
name: Rocky
system_prompt: You are a test persona.
style:
  drop_auxiliaries: [are]
  question_suffix: ", question?"
"""
PLAIN = "name: Plain\nsystem_prompt: You are a plain test persona.\n"
LINE = "Hello, how are you doing today?"
TOKEN = "s3cret-token-0123456789"
ROCKY_LINE = "Hello, how you doing today, question?"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_setup(root: Path, control: str = "") -> Path:
    """Personas rocky and plain, and a config using them with the control API on a free port."""
    personas = root / "personas"
    personas.mkdir(parents=True, exist_ok=True)
    (personas / "rocky.yaml").write_text(ROCKY, encoding="utf-8")
    (personas / "plain.yaml").write_text(PLAIN, encoding="utf-8")
    cfg = root / "config.yaml"
    cfg.write_text(
        f"persona: rocky\npersonas_dir: {personas}\nstate_dir: {root / 'state'}\n"
        f"audio:\n  output_device: no-such-speaker-here\n"
        f"control:\n  port: {free_port()}\n  max_body_kb: 64\n  max_text_chars: 2000\n{control}",
        encoding="utf-8",
    )
    return cfg


def wav_info(data: bytes) -> tuple[int, float]:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getframerate(), w.getnframes() / w.getframerate()


class Api:
    """Raw HTTP to the server, so malformed requests can be sent too."""

    def __init__(self, settings: ControlSettings) -> None:
        self.settings = settings

    def call(
        self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.settings.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, data: Any = None, **kw: Any) -> tuple[int, dict[str, Any]]:
        body = None if data is None else json.dumps(data).encode()
        status, headers, out = self.call(method, path, body, **kw)
        assert headers["content-type"] == "application/json"
        return status, json.loads(out)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("control")
    config = load_config(write_setup(root)).config
    played = root / "played"
    backend = TtsBackend(config, "rocky", sink_factory=lambda: FileSink(played))
    server = ControlServer(backend, config.control)
    server.start()
    yield Api(config.control), backend, played, config
    server.stop()
    backend.close()


def test_health_and_status_describe_the_server(served):
    api, *_ = served
    assert api.json("GET", "/health") == (200, {"ok": True, "kind": "serve", "persona": "Rocky"})
    status, body = api.json("GET", "/status")
    assert status == 200
    assert body["state"] == "idle" and body["persona"] == "Rocky" and body["persona_key"] == "rocky"
    assert body["uptime_s"] >= 0 and body["ready"] is True


def test_say_returns_a_wav_with_the_transformed_text(served):
    api, *_ = served
    status, headers, data = api.call("POST", "/say", json.dumps({"text": LINE}).encode())
    assert status == 200 and headers["content-type"] == "audio/wav"
    rate, seconds = wav_info(data)
    assert rate == 22050 and 1.0 < seconds < 5.0
    assert unquote(headers["x-companion-spoken"]) == ROCKY_LINE
    assert unquote(headers["x-companion-persona"]) == "Rocky" and headers["x-companion-changed"] == "1"
    _, body = api.json("GET", "/status")
    assert body["last_turn"]["spoken"] == ROCKY_LINE and body["last_turn"]["timings_ms"]["synthesize"] > 0


def test_say_raw_skips_the_transform_and_the_client_decodes_it(served):
    _, _, _, config = served
    said = ControlClient(config.control).synthesize(LINE, raw=True)
    assert (said.spoken, said.persona, said.changed) == (LINE, "Rocky", False)
    assert wav_info(said.wav)[1] > 1.0


def test_say_in_another_persona_leaves_the_current_one(served):
    api, _, _, config = served
    said = ControlClient(config.control).synthesize(LINE, persona="plain")
    assert (said.spoken, said.persona) == (LINE, "Plain")
    assert api.json("GET", "/health")[1]["persona"] == "Rocky"


def test_say_with_play_queues_it_on_the_speaker(served):
    api, _, played, _ = served
    status, body = api.json("POST", "/say", {"text": "Good good good. I am here!", "play": True})
    assert status == 200 and body["queued"] is True and body["persona"] == "Rocky"
    wav = played / f"turn-{body['turn']:03d}.wav"
    deadline = time.monotonic() + 30
    while not wav.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert wav_info(wav.read_bytes())[1] > 1.0


def test_persona_route_swaps_and_rejects_a_bad_name(served):
    api, *_ = served
    try:
        assert api.json("POST", "/persona", {"name": "plain"}) == (200, {"persona": "Plain", "name": "plain"})
        assert api.json("GET", "/status")[1]["persona"] == "Plain"
        status, body = api.json("POST", "/persona", {"name": "nobody"})
        assert status == 400
        assert "no persona named 'nobody'" in body["error"] and "\n" not in body["error"]
        assert api.json("GET", "/status")[1]["persona"] == "Plain"
    finally:
        api.json("POST", "/persona", {"name": "rocky"})


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("POST", "/say", b"{not json", 400, "bad JSON"),
        ("POST", "/say", b"\xff\xfe", 400, "bad JSON"),
        ("POST", "/say", b"[1, 2]", 400, "expected a JSON object"),
        ("POST", "/say", b'{"text": ""}', 400, "'text' is empty"),
        ("POST", "/say", b'{"text": "   "}', 400, "'text' is empty"),
        ("POST", "/say", b"{}", 400, "'text' is required"),
        ("POST", "/say", b'{"text": 5}', 400, "'text' is required"),
        ("POST", "/say", b'{"text": "***"}', 400, "nothing to say"),
        ("POST", "/say", b'{"text": "hi", "volume": 3}', 400, "unknown key 'volume'"),
        ("POST", "/say", b'{"text": "hi", "speed": 3}', 400, "'speed' must be from 0.5 to 2"),
        ("POST", "/say", b'{"text": "hi", "speed": "fast"}', 400, "'speed' must be a number"),
        ("POST", "/say", b'{"text": "hi", "raw": "yes"}', 400, "'raw' must be true or false"),
        ("POST", "/say", b'{"text": "hi", "persona": "nobody"}', 400, "no persona named 'nobody'"),
        ("POST", "/say", b"x" * (200 * 1024), 413, "request too large"),
        ("POST", "/persona", b'{"nome": "plain"}', 400, "expected"),
        ("GET", "/say", None, 405, "use POST"),
        ("POST", "/health", b"{}", 405, "use GET"),
        ("DELETE", "/status", None, 405, "use GET"),
        ("GET", "/nowhere", None, 404, "no such route /nowhere"),
        ("HEAD", "/health", None, 405, ""),
        ("OPTIONS", "/say", None, 405, "use POST"),
        ("BREW", "/say", None, 405, "use POST"),
        ("PUT", "/persona", b"{}", 405, "use POST"),
        ("POST", "/say", b'{"text": "hi\\u0000there"}', 400, "NUL character"),
        ("POST", "/say", b'{"text": "a \\ud800 b"}', 400, "lone surrogate"),
        ("POST", "/say", b'{"text": "a \\udc80"}', 400, "lone surrogate"),
        ("POST", "/say", b'{"text": "hi", "\\ud800": 1}', 400, "unknown key"),
        ("POST", "/say", b'{"text": "' + "\u4e2d".encode() * 3000 + b'"}', 413, "the limit is 2000"),
        ("POST", "/say", b"[" * 2000 + b"]" * 2000, 400, "nested too deeply"),
        ("POST", "/say", b'{"text": "hi", "persona": ' + b"[" * 40 + b"]" * 40 + b"}", 400, "nested too deeply"),
        ("POST", "/say", b'{"text": "hi", "persona": "../../etc/x"}', 400, "must be a persona name"),
        ("POST", "/say", b'{"text": "hi", "persona": "/etc/passwd"}', 400, "must be a persona name"),
        ("POST", "/say", b'{"text": "hi", "persona": "' + b"p" * 300 + b'"}', 400, "must be a persona name"),
        ("POST", "/persona", b'{"name": "../plain"}', 400, "must be a persona name"),
        ("POST", "/persona", b'{"name": "' + b"x" * 300 + b'"}', 400, "must be a persona name"),
        ("POST", "/persona", b'{"name": "\\ud800"}', 400, "must be a persona name"),
        ("POST", "/persona", b'{"name": "pl\\u0000ain"}', 400, "must be a persona name"),
    ],
)
def test_bad_requests_get_an_error_and_the_server_keeps_going(served, method, path, body, status, message):
    api, *_ = served
    got, headers, data = api.call(method, path, body)
    assert got == status
    if method == "HEAD":
        assert data == b"" and headers["allow"] == "GET"
        return
    error = json.loads(data)["error"]
    assert message in error and "\n" not in error
    assert "Traceback" not in error and "/personas" not in error and "/etc" not in error
    if status == 405:
        assert headers["allow"] in ("GET", "POST")
    assert api.json("GET", "/health")[0] == 200


def test_a_post_without_content_length_is_refused(served):
    api, *_ = served
    with socket.create_connection(("127.0.0.1", api.settings.port), timeout=10) as s:
        s.sendall(b"POST /say HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        answer = b"".join(iter(lambda: s.recv(65536), b""))
    assert answer.startswith(b"HTTP/1.0 411 ")


def test_play_without_a_speaker_is_a_503_that_says_so(served):
    config = served[3]
    headless = TtsBackend(config, "rocky")  # the configured speaker does not exist
    with ControlServer(headless, replace(config.control, port=free_port())) as server:
        client = ControlClient(server.settings)
        with pytest.raises(ControlRequestError) as err:
            client.play("Hello there.")
        assert err.value.status == 503 and err.value.reason == "no-speaker"
        assert "output device" in str(err.value)
    headless.close()


def test_a_token_is_required_when_configured(served):
    _, backend, _, config = served
    settings = replace(config.control, port=free_port(), token=TOKEN)
    with ControlServer(backend, settings):
        api = Api(settings)
        assert api.call("GET", "/health")[0] == 401
        status, headers, _ = api.call("GET", "/health", headers={"Authorization": "Bearer wrong"})
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        assert api.call("GET", "/health", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
        assert ControlClient(settings).health()["ok"] is True
        with pytest.raises(ControlRequestError, match="wrong token"):
            ControlClient(replace(settings, token=None)).health()


def test_listening_off_loopback_needs_a_token():
    with pytest.raises(ConfigError, match=r"c.yaml: control: host 0.0.0.0 is not loopback: set a token"):
        build(Config, {"control": {"host": "0.0.0.0"}}, source="c.yaml")
    assert build(Config, {"control": {"host": "0.0.0.0", "token": TOKEN}}, source="c.yaml").control.token == TOKEN
    assert build(Config, {"control": {"host": "::1"}}, source="c.yaml").control.host == "::1"


def test_a_unix_socket_is_private_and_cleaned_up(served, tmp_path: Path):
    _, backend, _, config = served
    path = tmp_path / "run" / "companion.sock"
    settings = replace(config.control, socket=path)
    with ControlServer(backend, settings) as server:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert server.address == f"unix:{path}"
        assert ControlClient(settings).synthesize("Hi there.").persona == "Rocky"
        with pytest.raises(UserError, match="is in use"):
            ControlServer(backend, settings).start()
    assert not path.exists()
    with pytest.raises(DaemonNotRunning):
        ControlClient(settings).health()
    stale = socket.socket(socket.AF_UNIX)  # a socket left over by a crash: replaced
    stale.bind(str(path))
    stale.close()
    with ControlServer(backend, settings):
        assert ControlClient(settings).health()["ok"] is True
    assert not path.exists()


def test_a_regular_file_at_the_socket_path_is_refused_not_deleted(served, tmp_path: Path):
    _, backend, _, config = served
    path = tmp_path / "companion.sock"
    path.write_text("my notes")
    with pytest.raises(UserError, match=r"exists and is not a socket; refusing to replace it"):
        ControlServer(backend, replace(config.control, socket=path)).start()
    assert path.read_text() == "my notes"
    link = tmp_path / "link.sock"
    link.symlink_to(path)
    with pytest.raises(UserError, match="is not a socket"):
        ControlServer(backend, replace(config.control, socket=link)).start()
    assert link.is_symlink() and path.read_text() == "my notes"


def test_a_taken_port_is_a_one_line_error(served):
    _, backend, _, config = served
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        settings = replace(config.control, port=taken.getsockname()[1])
        with pytest.raises(UserError, match=r"control API: cannot listen on 127.0.0.1:\d+: .*change control.port"):
            ControlServer(backend, settings).start()


def test_no_server_means_daemon_not_running():
    settings = ControlSettings(port=free_port())
    with pytest.raises(DaemonNotRunning, match=r"no daemon at http://127.0.0.1:\d+"):
        ControlClient(settings).health()


# ---- hardening (issue 15): time, connections, tokens -----------------------------------------


@pytest.fixture()
def quick(served):
    """A second server on the same backend whose requests must arrive within 1 s."""
    _, backend, _, config = served
    settings = replace(config.control, port=free_port(), request_timeout_s=1.0, max_connections=4)
    with ControlServer(backend, settings) as server:
        yield server


def raw(port: int, data: bytes, *, close_write: bool = False, wait: float = 10.0) -> tuple[bytes, float]:
    """Send ``data`` and read the whole answer; (answer, seconds until it came)."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        started = time.monotonic()
        s.sendall(data)
        if close_write:
            s.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: s.recv(65536), b""))
        return answer, time.monotonic() - started


def status_and_error(answer: bytes) -> tuple[int, str]:
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)["error"]


def test_a_body_shorter_than_its_content_length_is_answered_408_at_the_deadline(quick):
    answer, took = raw(quick.settings.port, b'POST /say HTTP/1.1\r\nContent-Length: 100\r\n\r\n{"text":')
    status, error = status_and_error(answer)
    assert status == 408 and "request not received within 1 s" in error and "got 8 of 100 body bytes" in error
    assert took < 3.0


def test_a_body_cut_short_by_the_client_is_a_400_at_once(quick):
    answer, took = raw(quick.settings.port, b"POST /say HTTP/1.1\r\nContent-Length: 100\r\n\r\n{}", close_write=True)
    assert status_and_error(answer) == (400, "the body ended after 2 of its Content-Length 100 bytes")
    assert took < 1.0


def test_a_client_trickling_its_headers_is_cut_off_at_the_deadline(quick):
    with socket.create_connection(("127.0.0.1", quick.settings.port), timeout=10) as s:
        started = time.monotonic()
        s.sendall(b"GET /health HTTP/1.1\r\n")
        answer = b""
        for _ in range(30):  # one header byte every 0.1 s: never idle, never done
            try:
                s.sendall(b"X")
            except OSError:
                break
            time.sleep(0.1)
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                answer += s.recv(65536)
            s.setblocking(True)
            if answer:
                break
        took = time.monotonic() - started
    assert status_and_error(answer) == (408, "request not received within 1 s (control.request_timeout_s)")
    assert took < 2.5


def test_connections_past_the_bound_get_a_503_at_once_and_the_server_recovers(quick):
    limit = quick.settings.max_connections
    threads_before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", quick.settings.port), timeout=5) for _ in range(limit)]
    try:
        time.sleep(0.2)  # the server has taken them all
        answer, took = raw(quick.settings.port, b"GET /health HTTP/1.1\r\n\r\n")
        status, error = status_and_error(answer)
        assert status == 503 and "too many connections (the limit is 4" in error and took < 0.5
        assert threading.active_count() <= threads_before + limit
    finally:
        for s in idle:
            s.close()
    deadline = time.monotonic() + 5
    while Api(quick.settings).call("GET", "/health")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("t", "token is 1 characters; use at least 16"),
        ("short-token", "token is 11 characters"),
        ("ünïcödé-token-ünïcödé", "printable ASCII"),
        ("a token with spaces in it", "printable ASCII"),
        ("   ", "token is empty"),
    ],
)
def test_weak_or_unsendable_tokens_are_config_errors(token, message):
    with pytest.raises(ConfigError, match=message) as err:
        build(Config, {"control": {"token": token}}, source="c.yaml")
    assert str(err.value).startswith("c.yaml: control: ")


def test_the_client_refuses_a_non_ascii_token_with_one_line():
    settings = ControlSettings(port=free_port())
    object.__setattr__(settings, "token", "пароль-пароль-пароль")  # as if built around the checks
    with pytest.raises(UserError, match=r"control.token must be printable ASCII"):
        ControlClient(settings).health()


def test_wrong_tokens_are_answered_slower_and_slower_one_at_a_time(served):
    _, backend, _, config = served
    settings = replace(config.control, port=free_port(), token=TOKEN)
    waits: list[float] = []
    now = [0.0]

    def fake_sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    with ControlServer(backend, settings) as server:
        server.auth = AuthGate(clock=lambda: now[0], sleep=fake_sleep)
        api = Api(settings)
        for i in range(25):
            assert api.call("GET", "/health", headers={"Authorization": f"Bearer guess-{i}"})[0] == 401
        assert api.call("GET", "/health", headers={"Authorization": f"Bearer {TOKEN}"})[0] == 200
    assert waits[:3] == pytest.approx([0.1, 0.2, 0.3])
    assert waits[-1] == 2.0  # capped
    assert len(waits) == 25  # the right token waited for nothing


def test_the_auth_gate_forgets_old_failures():
    now = [0.0]
    gate = AuthGate(clock=lambda: now[0], sleep=lambda s: None)
    assert [gate.failed() for _ in range(3)] == pytest.approx([0.1, 0.2, 0.3])
    now[0] = 120.0
    assert gate.failed() == pytest.approx(0.1)
