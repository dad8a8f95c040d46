"""``companion serve --wyoming``: the persona voices as a Wyoming TTS service.

The server is a real ``companion serve`` process on a free loopback port. It is queried
with the ``wyoming`` package's own client, and used by a second companion process with
``tts.engine: wyoming``. Zeroconf is exercised only inside a network namespace the test
creates (``unshare -n``): nothing is multicast on the machine's network.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import numpy as np
import pytest

from companion.remote import peers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def serve_config(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("serve")
    path = d / "config.yaml"
    path.write_text(f"state_dir: {d / 'state'}\ncontrol:\n  enabled: false\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def server(serve_config):
    peer = peers.companion_wyoming(serve_config, persona="rocky")
    yield peer
    peer.stop()


async def _exchange(uri: str, events: list, until: set[str]) -> list:
    from wyoming.client import AsyncClient

    got = []
    async with AsyncClient.from_uri(uri, connect_timeout=5, read_timeout=60) as client:
        for e in events:
            await client.write_event(e.event())
        while True:
            event = await client.read_event()
            assert event is not None, "the server closed the connection"
            got.append(event)
            if event.type in until:
                return got


def exchange(uri: str, events: list, until: set[str]) -> list:
    return asyncio.run(_exchange(uri, events, until))


def audio_of(events: list) -> tuple[np.ndarray, int]:
    from wyoming.audio import AudioChunk

    chunks = [AudioChunk.from_event(e) for e in events if AudioChunk.is_type(e.type)]
    assert chunks and {(c.width, c.channels) for c in chunks} == {(2, 1)}
    return np.frombuffer(b"".join(c.audio for c in chunks), np.int16), chunks[0].rate


def test_describe_lists_each_persona_as_a_voice(server):
    from wyoming.info import Describe, Info

    (info_event,) = exchange(server.address, [Describe()], {"info"})
    info = Info.from_event(info_event)
    (program,) = info.tts
    assert program.supports_synthesize_streaming
    names = {v.name for v in program.voices}
    assert {"default", "rocky", "wheatley"} <= names
    assert all(v.languages == ["en"] for v in program.voices)


def test_synthesize_speaks_in_the_persona_style_unless_the_text_is_marked_styled(server):
    from wyoming.tts import Synthesize, SynthesizeVoice

    text = "Can you explain?"  # Rocky says: "Can you explain, question?"
    styled = exchange(server.address, [Synthesize(text=text, voice=SynthesizeVoice(name="rocky"))], {"audio-stop"})
    plain = exchange(
        server.address,
        [Synthesize(text=text, voice=SynthesizeVoice(name="rocky"), context={"companion": {"styled": True}})],
        {"audio-stop"},
    )
    a, rate = audio_of(styled)
    b, _ = audio_of(plain)
    assert rate == 22050
    assert len(a) > len(b) + 0.2 * rate  # the transform added ", question"
    assert np.abs(a.astype(np.float32)).max() > 3000


def test_streaming_synthesis_speaks_each_sentence_as_its_text_arrives(server):
    from wyoming.tts import SynthesizeChunk, SynthesizeStart, SynthesizeStop, SynthesizeVoice

    events = [
        SynthesizeStart(voice=SynthesizeVoice(name="wheatley")),
        SynthesizeChunk(text="Hello there. How are"),
        SynthesizeChunk(text=" you today?"),
        SynthesizeStop(),
    ]
    got = exchange(server.address, events, {"synthesize-stopped"})
    kinds = [e.type for e in got]
    assert kinds.count("audio-start") == 2 and kinds.count("audio-stop") == 2  # one per sentence
    assert kinds[-1] == "synthesize-stopped"
    audio, rate = audio_of(got)
    assert len(audio) > rate


def test_an_unknown_voice_is_an_error_event_naming_the_voices(server):
    from wyoming.tts import Synthesize, SynthesizeVoice

    (err,) = exchange(server.address, [Synthesize(text="Hi.", voice=SynthesizeVoice(name="nobody"))], {"error"})
    assert "unknown voice 'nobody'" in err.data["text"] and "rocky" in err.data["text"]


def test_a_second_companion_speaks_through_the_server_with_tts_engine_wyoming(server, tmp_path):
    config = tmp_path / "robot.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\ncontrol:\n  enabled: false\n"
        f"tts:\n  engine: wyoming\n  uri: {server.address}\n  deadline_s: 30\n  fallback: false\n",
        encoding="utf-8",
    )
    out = tmp_path / "said.wav"
    proc = subprocess.run(
        [sys.executable, "-m", "companion", "say", "--config", str(config), "-o", str(out), "Hello from the robot."],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    with wave.open(str(out)) as w:
        assert w.getnframes() > 0.5 * w.getframerate()


def test_binding_beyond_loopback_warns(serve_config):
    from companion.remote.server import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")


BROWSE = """
import subprocess, sys, time
from zeroconf import Zeroconf
argv = [sys.executable, "-m", "companion", "serve", "--wyoming", "tcp://127.0.0.1:10700",
        "--zeroconf", "robotvoice", "--config", sys.argv[1]]
server = subprocess.Popen(argv, stderr=subprocess.DEVNULL)
try:
    zc, info, deadline = Zeroconf(), None, time.monotonic() + 60
    while info is None and time.monotonic() < deadline and server.poll() is None:
        info = zc.get_service_info("_wyoming._tcp.local.", "robotvoice._wyoming._tcp.local.", timeout=2000)
    zc.close()
    print("found", info.port if info else None)
finally:
    server.terminate()
    server.wait(10)
"""


@pytest.mark.skipif(shutil.which("unshare") is None or shutil.which("ip") is None, reason="needs unshare and ip")
def test_zeroconf_advertises_the_service_inside_a_private_network_namespace(serve_config, tmp_path):
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.decode().strip()}")
    script = tmp_path / "browse.py"
    script.write_text(BROWSE, encoding="utf-8")
    inner = f"ip link set lo up && ip link set lo multicast on && {sys.executable} {script} {serve_config}"
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", inner], capture_output=True, text=True, timeout=120, check=False
    )
    assert "found 10700" in proc.stdout, proc.stdout + proc.stderr
