"""Speech-to-text and text-to-speech over Wyoming, against the real servers others wrote.

wyoming-faster-whisper (on the bundled tiny.en) and wyoming-piper (on the bundled joe
voice) are started once for this module on free loopback ports.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from fixtures.fixtures import fixture_path, load_manifest, normalise, wer

from companion.audio.io import load_for_stt
from companion.remote import peers
from companion.remote.fallback import FallbackSTT, FallbackSynthesizer
from companion.remote.wyoming_io import describe
from companion.remote.wyoming_stt import WyomingSTT
from companion.tts.wyoming import WyomingSynthesizer

pytestmark = pytest.mark.slow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def whisper():
    peer = peers.faster_whisper()
    yield peer
    peer.stop()


@pytest.fixture(scope="module")
def piper_server():
    peer = peers.piper()
    yield peer
    peer.stop()


def utterance(name: str = "utt_01.wav") -> tuple[np.ndarray, str]:
    audio = load_for_stt(fixture_path(name))
    return audio, load_manifest()["files"][name]["text"]


def feed_in_blocks(stream, samples: np.ndarray, block: int = 480) -> None:
    for i in range(0, len(samples), block):
        stream.feed(samples[i : i + block])


def test_a_turn_streamed_to_wyoming_faster_whisper_is_transcribed(whisper):
    samples, text = utterance("utt_01.wav")
    stream = WyomingSTT(whisper.address, deadline_s=30).open_stream(16000)
    feed_in_blocks(stream, samples)  # as the microphone delivers it, while the user speaks
    heard = stream.finish()
    assert wer(text, heard) <= 0.2, (text, heard)


def test_the_stage_protocol_transcribes_float_audio_at_16k(whisper):
    samples, text = utterance("utt_03.wav")
    heard = WyomingSTT(whisper.address, deadline_s=30).transcribe(samples.astype(np.float32) / 32768.0)
    assert wer(text, heard) <= 0.2, (text, heard)


def test_a_cancelled_stream_leaves_the_server_usable(whisper):
    samples, text = utterance("utt_01.wav")
    stt = WyomingSTT(whisper.address, deadline_s=30)
    first = stt.open_stream(16000)
    feed_in_blocks(first, samples[:8000])
    first.cancel()
    stream = stt.open_stream(16000)
    feed_in_blocks(stream, samples)
    assert normalise(stream.finish()) == normalise(text)


def test_wyoming_piper_streams_a_sentence_resampled_to_the_output_rate(piper_server, piper):
    info = describe(piper_server.address)
    assert info.tts and info.tts[0].supports_synthesize_streaming
    synth = WyomingSynthesizer(piper_server.address, sample_rate=16000, deadline_s=30)
    assert synth.streams()
    blocks = list(synth.synthesize("Hello there, how are you doing today?"))
    remote = np.concatenate(blocks)
    local = np.concatenate(list(piper.synthesize("Hello there, how are you doing today?")))
    # the same voice: the same length once both are in seconds, and real sound
    assert abs(len(remote) / 16000 - len(local) / piper.sample_rate) < 0.25
    assert np.sqrt(np.mean(remote**2)) > 0.02
    assert remote.dtype == np.float32 and np.abs(remote).max() <= 1.0


def test_stt_falls_back_to_the_local_model_when_the_server_is_off_and_uses_it_again_when_it_is_back(stt):
    samples, text = utterance("utt_02.wav")
    clock = Clock()
    whisper = peers.faster_whisper()
    port = whisper.port
    try:
        fallback = FallbackSTT(WyomingSTT(whisper.address, deadline_s=30), stt, clock=clock)
        assert normalise(fallback.transcribe(samples / 32768.0)) == normalise(text)
        assert fallback.health.state == "ok" and fallback.health.fallbacks == 0

        whisper.stop()  # the server goes away
        t = time.perf_counter()
        stream = fallback.open_stream(16000)
        feed_in_blocks(stream, samples)
        assert normalise(stream.finish()) == normalise(text)  # the local model answered the turn
        assert time.perf_counter() - t < 5.0
        assert fallback.health.state == "down" and fallback.health.fallbacks == 1

        whisper = peers.faster_whisper(port=port)  # back, on the same address
        assert normalise(fallback.transcribe(samples / 32768.0)) == normalise(text)
        assert fallback.health.fallbacks == 2, "in back-off: the remote is not asked yet"
        clock.now += 60.0
        assert normalise(fallback.transcribe(samples / 32768.0)) == normalise(text)
        assert fallback.health.state == "ok" and fallback.health.fallbacks == 2
        status = fallback.backend_status()
        assert status["health"] == "ok" and status["remote"] == whisper.address
    finally:
        whisper.stop()


def test_tts_falls_back_to_the_local_voice_when_the_server_is_off(piper):
    closed = f"tcp://127.0.0.1:{peers.free_port()}"
    synth = FallbackSynthesizer(WyomingSynthesizer(closed, sample_rate=piper.sample_rate), piper)
    t = time.perf_counter()
    audio = np.concatenate(list(synth.synthesize("Still talking.")))
    assert time.perf_counter() - t < 5.0
    assert len(audio) > piper.sample_rate * 0.3
    assert synth.health.state == "down" and "cannot connect" in synth.health.last_error


def test_doctor_and_status_show_each_stages_backend_and_health(whisper, stt):
    from types import SimpleNamespace

    from companion.cli.service import check_remotes
    from companion.config import Config, SttSettings, TtsSettings
    from companion.control.daemon_backend import stage_backends

    closed = f"tcp://127.0.0.1:{peers.free_port()}"
    config = Config(
        stt=SttSettings(engine="wyoming", uri=whisper.address), tts=TtsSettings(engine="wyoming", uri=closed)
    )
    stt_check, tts_check = check_remotes(config)
    assert stt_check.ok and "faster-whisper" in stt_check.detail
    assert not tts_check.ok and "cannot connect" in tts_check.detail and "local model answers" in tts_check.fix

    fallback = FallbackSTT(WyomingSTT(closed), stt)
    fallback.transcribe(np.zeros(8000, np.float32))
    daemon = SimpleNamespace(models=SimpleNamespace(stt=fallback, chat=object()), persona=None)
    daemon.voice_for = lambda _persona: object()
    stages = stage_backends(daemon)
    assert stages["stt"]["health"] == "down" and stages["stt"]["remote"] == closed
    assert stages["stt"]["fallback"] == "FasterWhisperSTT" and stages["stt"]["fallback_turns"] == 1
    assert stages["llm"] == {"backend": "local", "health": "ok"}


def test_config_builds_a_remote_stage_with_the_local_model_as_fallback(whisper):
    from companion.config import Config, LlmSettings, SttSettings
    from companion.errors import UserError
    from companion.messages import PersonaPrompt
    from companion.remote.build import build_chat, build_stt

    stt = build_stt(Config(stt=SttSettings(engine="wyoming", uri=whisper.address, deadline_s=30)))
    assert isinstance(stt, FallbackSTT) and stt.local is not None
    samples, text = utterance("utt_06.wav")
    assert wer(text, stt.transcribe(samples / 32768.0)) <= 0.2
    alone = build_stt(Config(stt=SttSettings(engine="wyoming", uri=whisper.address, fallback=False)))
    assert isinstance(alone, FallbackSTT) and alone.local is None
    with pytest.raises(UserError, match=r"stt\.uri is not set"):
        build_stt(Config(stt=SttSettings(engine="wyoming")))
    with pytest.raises(UserError, match=r"stt\.uri: expected tcp://HOST:PORT"):
        build_stt(Config(stt=SttSettings(engine="wyoming", uri="http://x:1")))
    with pytest.raises(UserError, match=r"llm\.url: expected"):
        build_chat(Config(llm=LlmSettings(engine="openai", url="tcp://x:1", fallback=False)), PersonaPrompt("x"))
