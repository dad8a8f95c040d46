"""Hypothesis-driven requests against the real control API server (real Piper voice, loopback port).

Each request gets an answer below 500 (4xx with a one-line JSON error, or 200)
within 2 s and 200 MB of extra peak RSS, and nothing is logged as an error.
"""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pytest
from fuzzkit import Meter, one_line
from hypothesis import given
from hypothesis import strategies as st
from test_control_api import free_port, wav_info, write_setup

from companion.audio.sinks import FileSink
from companion.config import load_config
from companion.control.server import ControlServer
from companion.control.tts_backend import TtsBackend

NASTY = [
    "\x00", "\ud800", "\udc80", "\ufeff", "\u202e", "\u0301" * 20, "\U0001f680", "中文字符", "ﷺ", "\r\n", "\t",
    "../", "/etc/passwd", "%00", "%2e%2e%2f", "' OR 1=1", "{{7*7}}", "\\", '"', "a" * 100,
]  # fmt: skip
texts = st.one_of(
    st.text(st.characters(codec=None, exclude_categories=()), max_size=40),
    st.lists(st.sampled_from([*NASTY, "hello", "how are you?", "ok."]), max_size=4).map("".join),
)
names = st.one_of(texts, st.sampled_from(["rocky", "plain", "default", "nobody", "x" * 65, "r0cky-_"]))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8,
)
say_bodies = st.fixed_dictionaries(
    {"text": texts},
    optional={
        "persona": names | json_values,
        "speed": st.floats(allow_nan=True) | st.integers() | json_values,
        "raw": st.booleans() | json_values,
        "play": st.just(False) | json_values,
        "volume": json_values,
    },
)
persona_bodies = st.one_of(st.fixed_dictionaries({"name": names | json_values}), json_values)


def to_bytes(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=True).encode("ascii")


bodies = st.one_of(
    say_bodies.map(to_bytes),
    persona_bodies.map(to_bytes),
    st.binary(max_size=200),
    st.integers(1, 3000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 3000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n),
)
methods = st.sampled_from(["GET", "POST", "HEAD", "OPTIONS", "PUT", "DELETE", "PATCH", "BREW", "get", "X" * 40])
paths = st.one_of(
    st.sampled_from(["/say", "/persona", "/health", "/status", "/", "/say/", "//say", "/say?x=1", "/%00", "/..%2f"]),
    st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=60).map(lambda p: "/" + p),
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=80)
extra_headers = st.dictionaries(
    st.sampled_from(["Authorization", "Content-Type", "Transfer-Encoding", "Expect", "Connection", "X-Junk"]),
    header_values,
    max_size=3,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("fuzz-control")
    config = load_config(write_setup(root)).config
    backend = TtsBackend(config, "rocky", sink_factory=lambda: FileSink(root / "played"))
    settings = replace(config.control, port=free_port(), request_timeout_s=1.0, max_text_chars=200)
    with ControlServer(backend, settings) as srv:
        yield srv
    backend.close()


def exchange(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(request)
        s.shutdown(socket.SHUT_WR)  # a server that closed early would fail this (ENOTCONN)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def check_answer(answer: bytes, method: str) -> int:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1."), answer[:200]
    status = int(head.split()[1])
    assert status < 500, answer[:300]
    if status >= 400 and method.upper() != "HEAD":
        assert b"application/json" in head, head
        one_line(json.loads(body)["error"])
    return status


@given(method=methods, path=paths, body=st.none() | bodies, headers=extra_headers)
def test_any_request_gets_a_4xx_or_an_answer_quickly(server, meter: Meter, error_log, method, path, body, headers):
    lines = [f"{method} {path} HTTP/1.1", "Host: x"]
    lines += [f"{k}: {v}" for k, v in headers.items() if k not in ("Transfer-Encoding", "Connection")]
    if body is not None:
        lines.append(f"Content-Length: {len(body)}")
    request = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")
    with meter.measure((method, path, body)):
        answer = exchange(server.settings.port, request)
    check_answer(answer, method)


@given(body=say_bodies)
def test_any_say_body_gets_a_wav_or_a_400(server, meter: Meter, error_log, body):
    payload = to_bytes(body)
    request = f"POST /say HTTP/1.1\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload
    with meter.measure(body) as budget:
        answer = exchange(server.settings.port, request)
        head, _, wav = answer.partition(b"\r\n\r\n")
        if b"audio/wav" in head:  # real speech: 2 s plus its length
            budget.seconds = budget.seconds + wav_info(wav)[1]
    if check_answer(answer, "POST") == 200:
        assert b"audio/wav" in head or b'"queued": true' in answer


@given(raw_line=st.binary(max_size=300))
def test_garbage_request_lines_get_a_4xx_or_nothing(server, meter: Meter, error_log, raw_line):
    with meter.measure(raw_line):
        answer = exchange(server.settings.port, raw_line + b"\r\n\r\n")
    if answer:
        check_answer(answer, "GET")
