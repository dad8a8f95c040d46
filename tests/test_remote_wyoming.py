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


def test_the_loop_streams_each_turn_to_wyoming_while_the_user_speaks(whisper):
    """Real time, real server, a tap on the wire: the audio crosses while the user talks, not after."""
    from fakes import MemorySink, ScriptChat, ToneTTS
    from tcp_tap import Tap

    from companion.audio.sources import FileSource
    from companion.config import ListenSettings, VadSettings
    from companion.loop import VoiceLoop
    from companion.messages import TurnFinished
    from companion.persona import Persona
    from companion.remote.wyoming_io import parse_tcp_uri
    from companion.stages import EventBus
    from companion.vad import TurnDetector

    first, first_text = utterance("utt_01.wav")
    second, second_text = utterance("utt_03.wav")
    gap = np.zeros(int(1.5 * 16000), np.int16)
    host, port = parse_tcp_uri(whisper.address, key="test")
    tap = Tap((host, port))
    started: list[float] = []

    def clock() -> float:
        now = time.monotonic()
        if not started:
            started.append(now)  # FileSource reads the clock once, as it starts the recording
        return now

    bus = EventBus()
    records = []
    bus.subscribe(lambda e: records.append(e.record) if isinstance(e, TurnFinished) else None)
    loop = VoiceLoop(
        source=FileSource(np.concatenate([first, gap, second]), realtime=True, clock=clock),
        sink=MemorySink(),
        detector=TurnDetector(VadSettings()),
        stt=FallbackSTT(WyomingSTT(tap.uri, deadline_s=30), None),
        chat=ScriptChat(["Fine.", "No."]),
        tts=ToneTTS(),
        persona=Persona(name="Rocky", system_prompt="You are Rocky.", fallback="Rocky confused."),
        listen=ListenSettings(),
        bus=bus,
    )
    try:
        loop.run()
    finally:
        tap.close()
    assert loop.error is None
    assert [wer(t, r.heard) <= 0.2 for t, r in zip((first_text, second_text), records, strict=True)] == [True] * 2
    per_second = 2 * 16000
    since = 0.0
    for record in records:
        spoken_until = started[0] + record.speech_end_s  # when the user stopped talking, on this clock
        during = tap.bytes_before(spoken_until) - tap.bytes_before(since)
        after = tap.bytes_before(spoken_until + 1.0) - tap.bytes_before(spoken_until)
        assert during >= per_second * 1.0, f"only {during} bytes sent while the user spoke"
        assert after <= per_second * 0.4, f"{after} bytes still to send after the user stopped"
        since = spoken_until + 1.0
    assert tap.connections >= 2


class RecordingStream:
    def __init__(self, log: list[list[np.ndarray]]) -> None:
        self.parts: list[np.ndarray] = []
        log.append(self.parts)
        self.finished = self.cancelled = False

    def feed(self, samples: np.ndarray) -> None:
        self.parts.append(np.array(samples))

    def finish(self) -> str:
        self.finished = True
        return f"{sum(len(p) for p in self.parts)} samples"

    def cancel(self) -> None:
        self.cancelled = True


class StreamingFake:
    """The streaming seam, recorded: what audio reached each stream (ordering, not speech)."""

    streams_live = True

    def __init__(self) -> None:
        self.streams: list[list[np.ndarray]] = []
        self.objects: list[RecordingStream] = []

    def open_stream(self, rate: int = 16000) -> RecordingStream:
        stream = RecordingStream(self.streams)
        self.objects.append(stream)
        return stream

    def transcribe(self, audio) -> str:
        raise AssertionError("a streaming STT is not asked to transcribe whole turns")


@pytest.mark.parametrize("speculative", [True, False])
def test_a_turn_resumed_after_a_pause_is_streamed_again_from_its_start(speculative):
    from fakes import ListSource, MemorySink, PatternVad, ScriptChat, ToneTTS, speech_pattern

    from companion.config import ListenSettings, VadSettings
    from companion.loop import LoopOptions, VoiceLoop
    from companion.messages import Event, TurnFinished
    from companion.persona import Persona
    from companion.stages import EventBus
    from companion.vad import TurnDetector

    # 0.6 s voice, a 150 ms pause (a draft), 0.6 s more voice, then the turn ends; then a cough
    chunks, _ = speech_pattern("_" * 10 + "#" * 20 + "_" * 5 + "#" * 20 + "_" * 20 + "####" + "_" * 20)
    stt = StreamingFake()
    bus = EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    loop = VoiceLoop(
        source=ListSource(chunks),
        sink=MemorySink(),
        detector=TurnDetector(VadSettings(end_silence_ms=300), classifier=PatternVad()),
        stt=stt,  # type: ignore[arg-type]
        chat=ScriptChat(["Yes."]),
        tts=ToneTTS(),
        persona=Persona(name="Rocky", system_prompt="You are Rocky.", fallback="Rocky confused."),
        listen=ListenSettings(),
        options=LoopOptions(speculative_stt=speculative),
        bus=bus,
    )
    loop.source.gate = lambda i: loop.wait_idle()
    loop.run()
    assert loop.error is None
    records = [e.record for e in events if isinstance(e, TurnFinished)]
    assert len(records) == 1
    whole = np.concatenate([c.samples for c in chunks])
    heard = np.concatenate(stt.streams[-1])
    # the stream that answered holds the whole turn, pre-roll and both halves, exactly as heard
    starts = [i for i in range(0, 10 * 480 + 1, 480) if np.array_equal(heard, whole[i : i + len(heard)])]
    assert len(starts) == 1 and len(heard) >= (starts[0] // 480 + 45) * 480 - starts[0]
    assert records[0].heard == f"{len(heard)} samples"
    assert len(heard) >= 40 * 480
    if speculative:  # the draft at the pause spent the first stream; the resumed turn was sent anew
        assert len(stt.streams) == 2 and stt.objects[0].finished
        assert len(np.concatenate(stt.streams[0])) < len(heard)
    assert not any(s.finished and s.cancelled for s in stt.objects)
    assert all(s.finished for s in stt.objects), "the cough was never streamed: too short to open one"
