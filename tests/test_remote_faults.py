"""Broken servers: each turn still gets an answer from the local model, and nothing hangs.

The misbehaving servers here are tiny loopback sockets that do one wrong thing each
(accept and never answer, send garbage, send audio in a format we cannot play). The
local fallbacks are the real bundled models.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from fixtures.fixtures import fixture_path, load_manifest, normalise

from companion.audio.io import load_for_stt
from companion.remote.fallback import FallbackSTT, FallbackSynthesizer
from companion.remote.health import RemoteError
from companion.remote.wyoming_io import describe
from companion.remote.wyoming_stt import WyomingSTT
from companion.tts.wyoming import WyomingSynthesizer, pcm_to_float

pytestmark = pytest.mark.slow

Behaviour = Callable[[socket.socket], None]


class BadServer:
    """A loopback TCP server whose every connection gets ``behaviour`` (bounded: closes on stop)."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.uri = f"tcp://127.0.0.1:{self.sock.getsockname()[1]}"
        self.behaviour = behaviour
        self.clients: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="bad-server", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.clients.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.behaviour(conn)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        for c in self.clients:
            c.close()
        self.sock.close()


def hang(conn: socket.socket) -> None:
    """Accept, read whatever comes, never answer."""
    conn.settimeout(0.1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if not conn.recv(65536):
                return
        except TimeoutError:
            continue


def garbage(conn: socket.socket) -> None:
    conn.sendall(b"\x00\xff\xfe garbage that is not JSON \x13\x37\n" * 4)
    hang(conn)


def event(kind: str, data: dict, payload: bytes = b"") -> bytes:
    header = {"type": kind, "data": data}
    if payload:
        header["payload_length"] = len(payload)
    return json.dumps(header).encode() + b"\n" + payload


def tts_info() -> bytes:
    program = {"name": "bad", "attribution": {"name": "t", "url": "u"}, "installed": True, "description": "d"}
    program.update(version=None, voices=[], supports_synthesize_streaming=False)
    return event("info", {"tts": [program]})


def answers(reply: Callable[[], bytes]) -> Behaviour:
    """Answer ``describe`` with a TTS info and anything else with ``reply()``."""

    def run(conn: socket.socket) -> None:
        f = conn.makefile("rb")
        line = f.readline()
        if b'"describe"' in line:
            conn.sendall(tts_info())
        else:
            conn.sendall(reply())
        hang(conn)

    return run


@pytest.fixture()
def server():
    made: list[BadServer] = []

    def make(behaviour: Behaviour) -> BadServer:
        made.append(BadServer(behaviour))
        return made[-1]

    yield make
    for s in made:
        s.close()


def turn(local) -> tuple[np.ndarray, str]:
    """A recorded turn, and what the local model hears in it: the fallback's answer must be that.
    (tiny.en's own words, not the script's: on some CPUs it hears "cook" as "code".)"""
    name = "utt_04.wav"
    samples = load_for_stt(fixture_path(name))
    heard = local.transcribe(samples / 32768.0)
    words = normalise(load_manifest()["files"][name]["text"]).split()
    assert sum(a == b for a, b in zip(normalise(heard).split(), words, strict=False)) >= len(words) - 1, heard
    return samples, heard


def test_a_server_that_accepts_and_never_answers_costs_one_deadline_then_the_local_model_answers(server, stt):
    hung = server(hang)
    samples, text = turn(stt)
    frozen = 1000.0  # the back-off clock stands still: the second turn is inside it
    fallback = FallbackSTT(WyomingSTT(hung.uri, connect_timeout_s=0.3, deadline_s=0.8), stt, clock=lambda: frozen)
    t = time.perf_counter()
    heard = fallback.transcribe(samples / 32768.0)
    took = time.perf_counter() - t
    assert normalise(heard) == normalise(text)
    assert 0.8 <= took < 0.8 + 20.0, took  # waited out the deadline, then tiny.en took the turn
    error = fallback.health.last_error  # which deadline fires first depends on the machine's speed
    assert fallback.health.state == "down" and ("in time" in error or "within" in error), error
    connections = len(hung.clients)
    assert normalise(fallback.transcribe(samples / 32768.0)) == normalise(text)
    assert len(hung.clients) == connections, "in back-off the hung server is not asked again"


def test_garbage_bytes_are_an_error_naming_the_server_and_the_turn_goes_local(server, stt, piper):
    bad = server(garbage)
    with pytest.raises(RemoteError, match="not a Wyoming event"):
        describe(bad.uri)
    samples, text = turn(stt)
    fallback = FallbackSTT(WyomingSTT(bad.uri, deadline_s=5.0), stt)
    assert normalise(fallback.transcribe(samples / 32768.0)) == normalise(text)
    voice = FallbackSynthesizer(WyomingSynthesizer(bad.uri, sample_rate=piper.sample_rate), piper)
    voice.remote.deadline_s = 60.0  # garbage must fail at once, not at the deadline
    t = time.perf_counter()
    assert sum(len(b) for b in voice.synthesize("Still here.")) > piper.sample_rate * 0.3
    assert time.perf_counter() - t < 30.0
    assert "not a Wyoming event" in voice.health.last_error


def test_audio_in_a_format_we_cannot_play_makes_that_sentence_local(server, piper):
    def reply() -> bytes:
        fmt = {"rate": 22050, "width": 3, "channels": 1}
        return event("audio-start", fmt) + event("audio-chunk", fmt, b"\x01\x02\x03" * 512) + event("audio-stop", {})

    bad = server(answers(reply))
    voice = FallbackSynthesizer(WyomingSynthesizer(bad.uri, sample_rate=piper.sample_rate), piper)
    audio = np.concatenate(list(voice.synthesize("Said locally.")))
    assert len(audio) > piper.sample_rate * 0.3
    assert "unsupported audio format" in voice.health.last_error


def test_audio_at_another_rate_width_and_channel_count_is_converted(server):
    rate, seconds = 8000, 0.5
    t = np.arange(int(rate * seconds)) / rate
    tone = (np.sin(2 * np.pi * 440 * t) * 0.5 * 2**31).astype("<i4")
    stereo = np.stack([tone, tone], axis=1).tobytes()

    def reply() -> bytes:
        fmt = {"rate": rate, "width": 4, "channels": 2}
        return event("audio-start", fmt) + event("audio-chunk", fmt, stereo) + event("audio-stop", {})

    odd = server(answers(reply))
    synth = WyomingSynthesizer(odd.uri, sample_rate=22050)
    audio = np.concatenate(list(synth.synthesize("A tone.")))
    assert abs(len(audio) - 22050 * seconds) < 200
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 22050 / len(audio) - 440) < 10
    assert 0.45 < np.abs(audio).max() < 0.55


def test_a_header_announcing_a_huge_payload_is_refused_without_reading_it(server):
    bad = server(lambda c: (c.sendall(b'{"type": "info", "payload_length": 999999999999}\n'), hang(c)))
    with pytest.raises(RemoteError, match="too many"):
        describe(bad.uri)


def test_pcm_formats():
    assert pcm_to_float(np.array([0, 16384, -32768], "<i2").tobytes(), 2, 1).tolist() == [0.0, 0.5, -1.0]
    assert pcm_to_float(bytes([128, 192]), 1, 1).tolist() == [0.0, 0.5]
    with pytest.raises(RemoteError, match="24-bit"):
        pcm_to_float(b"\x00" * 6, 3, 1)


def test_with_every_server_down_the_robot_still_answers_each_turn_aloud(server, tmp_path):
    import subprocess
    import sys
    import wave

    from companion.remote.peers import free_port

    hung = server(hang)
    closed = free_port()
    config = tmp_path / "robot.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\ncontrol:\n  enabled: false\n"
        f"stt:\n  engine: wyoming\n  uri: {hung.uri}\n  deadline_s: 1.0\n"
        f"llm:\n  engine: openai\n  url: http://127.0.0.1:{closed}/v1\n"
        f"tts:\n  engine: wyoming\n  uri: tcp://127.0.0.1:{closed}\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "companion", "run", "--config", str(config), "--fast"]
    argv += ["--input", str(fixture_path("utt_01.wav")), "--output-dir", str(out)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    turns = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    assert turns and all(t["reply"] for t in turns), (turns, proc.stderr[-3000:])
    assert normalise(turns[0]["heard"]) == normalise(load_manifest()["files"]["utt_01.wav"]["text"])
    with wave.open(str(out / Path(turns[0]["audio"]).name)) as w:
        assert w.getnframes() > 0.3 * w.getframerate()
    for stage in ("stt", "llm"):  # each outage logged once
        assert proc.stderr.count(f"{stage}: remote") == 1, proc.stderr
    # tts: the start-up probe and the warm-up sentence race for the first try; at most one line
    assert proc.stderr.count("tts: remote") <= 1, proc.stderr


def test_back_off_doubles_to_its_cap_and_each_outage_is_logged_once(caplog):
    import logging

    from companion.remote.health import BACKOFF_MAX_S, RemoteHealth

    now = [0.0]
    health = RemoteHealth("llm", "http://box:8080/v1", clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="companion.remote.health")
    assert health.should_try() and health.state == "unknown"
    waits = []
    for _ in range(8):
        health.failed(RemoteError("no answer in time"))
        assert not health.should_try()
        waits.append(health.retry_at - now[0])
        now[0] = health.retry_at
        assert health.should_try()
    assert waits == [1, 2, 4, 8, 16, BACKOFF_MAX_S, BACKOFF_MAX_S, BACKOFF_MAX_S]
    health.ok(12.0)
    health.failed("refused")
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "llm: remote http://box:8080/v1 failed",
        "llm: remote http://box:8080/v1 answers again; using it",
        "llm: remote http://box:8080/v1 failed",
    ]
    assert health.as_json()["retry_in_s"] == 1.0 and health.as_json()["last_ms"] == 12.0
