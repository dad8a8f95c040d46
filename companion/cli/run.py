"""``companion run``, ``devices``, ``transcribe`` and ``chat``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

from companion.config import LoadedConfig, load_config
from companion.errors import UserError
from companion.messages import Event, TurnFinished

if TYPE_CHECKING:
    from companion.messages import Float32Array

_log = logging.getLogger(__name__)


def add_config_args(p: argparse.ArgumentParser, *, persona: bool = True) -> None:
    p.add_argument("--config", type=Path, help="config file (default: the search path, see README)")
    if persona:
        p.add_argument("--persona", help="persona name (default: config's persona)")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run the voice loop on the mic and speaker, or on a recording")
    add_config_args(p)
    p.add_argument("--input", type=Path, metavar="REC.wav", help="run on a recording instead of the mic")
    p.add_argument("--output-dir", type=Path, metavar="DIR", help="write replies as DIR/turn-NNN.wav")
    p.add_argument("--fast", action="store_true", help="with --input: do not pace by the audio clock")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("devices", help="list sound devices")
    p.set_defaults(func=cmd_devices)

    p = sub.add_parser("transcribe", help="print what is said in a recording")
    add_config_args(p, persona=False)
    p.add_argument("recording", type=Path)
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("chat", help="text-only conversation with the persona (no audio)")
    add_config_args(p)
    p.add_argument("--transform", action="store_true", help="show replies after the style transform too")
    p.set_defaults(func=cmd_chat)


# ---- run ----------------------------------------------------------------------------------


class TranscriptWriter:
    """Writes ``transcript.jsonl`` (one turn a line, flushed per turn) and echoes turns."""

    def __init__(self, path: Path | None, echo: IO[str] | None, persona: str) -> None:
        self.path = path
        self.echo = echo
        self.persona = persona
        self._file = path.open("w", encoding="utf-8") if path else None
        self._lock = threading.Lock()
        self.turns = 0

    def __call__(self, event: Event) -> None:
        if not isinstance(event, TurnFinished) or not event.record.heard:
            return
        r = event.record
        with self._lock:
            self.turns += 1
            if self._file:
                self._file.write(json.dumps(r.as_json(), ensure_ascii=False) + "\n")
                self._file.flush()
            if self.echo:
                ms = r.timings_ms.get("response")
                took = f"  ({ms / 1000:.2f} s)" if ms is not None else ""
                print(f"you:   {r.heard}", file=self.echo)
                print(f"{r.persona.lower()}: {r.spoken}{took}", file=self.echo, flush=True)

    def close(self) -> None:
        if self._file:
            self._file.close()


def cmd_run(args: argparse.Namespace) -> int:
    from companion.app import load_persona_for
    from companion.audio.sinks import FileSink, SpeakerSink
    from companion.audio.sources import FileSource, MicSource
    from companion.daemon import Daemon
    from companion.stages import AudioSink, AudioSource

    loaded = load_config(args.config)
    config = loaded.config
    _apply_log_level(args, loaded)
    persona = load_persona_for(config, args.persona)
    source: AudioSource
    sink: AudioSink
    reference = None
    if args.input is not None:
        from companion.audio.io import STT_RATE, read_audio, resample, to_int16

        samples, rate = read_audio(args.input)
        check_recording(args.input, samples, rate)  # before the models load
        audio = to_int16(resample(samples, rate, STT_RATE))
        del samples
        source = FileSource(audio, block_ms=config.audio.block_ms, realtime=not args.fast)
        print(pacing_note(args.input, len(audio) / STT_RATE, fast=args.fast), flush=True)
    else:
        from companion.audio.devices import resolve_device

        resolve_device(config.audio.input_device, "input")  # fail fast, before loading models
        source = MicSource(config.audio.input_device, block_ms=config.audio.block_ms)
    if args.output_dir is not None:
        sink = FileSink(args.output_dir)
    else:
        from companion.audio.devices import resolve_device

        resolve_device(config.audio.output_device, "output")
        if source.live and config.audio.echo_cancel == "speex":
            from companion.audio.echo import EchoReference

            reference = EchoReference()
        sink = SpeakerSink(
            config.audio.output_device,
            rate=config.audio.output_rate,
            latency=config.audio.output_latency,
            reference=reference,
        )

    writer = TranscriptWriter(
        args.output_dir / "transcript.jsonl" if args.output_dir else None,
        sys.stdout if args.input is not None else None,
        persona.name,
    )
    daemon = Daemon(
        loaded,
        persona,
        source=source,
        sink=sink,
        config_arg=args.config,
        persona_key=args.persona or config.persona,
        echo_reference=reference,
    )
    daemon.bus.subscribe(writer)
    daemon.install_signal_handlers()
    control = None
    try:
        daemon.start()
        if args.input is None:  # the robot: serve the local control API (say, status, persona)
            from companion.control.daemon_backend import start_control_api

            control = start_control_api(daemon)
        daemon.wait()
    finally:
        if control is not None:
            control.stop()
        daemon.stop()
        writer.close()
    loop = daemon.loop
    if loop is not None and loop.error is not None:
        raise UserError(f"the voice loop stopped: {loop.error}")
    if args.input is not None and writer.turns == 0:
        print(f"companion: no speech heard in {args.input} (no turn answered)", file=sys.stderr)
    return 0


def pacing_note(path: Path, seconds: float, *, fast: bool) -> str:
    """What the response times printed after each reply mean for a run on ``path``."""
    if fast:
        return (
            f"{path.name}: not paced (--fast): the next turn comes as soon as the robot has answered, and the"
            " transcription a live turn does during its end-of-turn pause adds to each (response time)"
        )
    return (
        f"{path.name}: {seconds:.1f} s played in real time, as a person talks; (response time) = end of"
        " your speech -> first sample of the reply, as a user would hear it"
    )


def _apply_log_level(args: argparse.Namespace, loaded: LoadedConfig) -> None:
    if not (args.verbose or args.quiet):
        logging.getLogger().setLevel(loaded.config.log_level.upper())


# ---- devices, transcribe, chat ----------------------------------------------------------------


def cmd_devices(args: argparse.Namespace) -> int:
    from companion.audio.devices import list_devices

    devices = list_devices()
    if not devices:
        print("no sound devices found (on a headless box: companion run --input REC.wav --output-dir DIR)")
        return 1
    for d in devices:
        marks = ("<in " if d.is_default_input else "") + ("<out" if d.is_default_output else "")
        print(
            f"{d.index:3d}  {d.name[:44]:44s}  in {d.inputs:2d}  out {d.outputs:2d}  {d.default_rate:7.0f} Hz  {marks}"
        )
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from companion.audio.io import STT_RATE, read_audio, resample
    from companion.stt import FasterWhisperSTT

    samples, rate = read_audio(args.recording)
    config = load_config(args.config).config
    heard = check_recording(args.recording, samples, rate)
    text = FasterWhisperSTT(config.stt).transcribe(resample(samples, rate, STT_RATE)).strip()
    if not text:
        raise UserError(f"no speech in {args.recording} (nothing recognised in {heard})")
    print(text)
    return 0


def check_recording(path: Path, samples: Float32Array, rate: int) -> str:
    """Warn about a clipped recording; refuse one that cannot hold speech. Returns its length, as words."""
    from companion.audio.io import recording_notes

    notes = recording_notes(samples, rate)
    for note in notes:
        if not note.no_speech:
            _log.warning("%s: %s", path, note.text)
    fatal = [n.text for n in notes if n.no_speech]
    if fatal:
        raise UserError(f"no speech in {path}: {'; '.join(fatal)}")
    return f"{len(samples) / rate:.1f} s of audio"


def cmd_chat(args: argparse.Namespace) -> int:
    from companion.app import load_persona_for, persona_prompt
    from companion.llm import LlamaChat
    from companion.script import prepare

    config = load_config(args.config).config
    persona = load_persona_for(config, args.persona)
    chat = LlamaChat(config.llm, persona_prompt(persona))
    chat.warm()
    interactive = sys.stdin.isatty()
    if interactive:
        print(f"Talking to {persona.name}. Empty line or Ctrl-D to quit.", file=sys.stderr)
    while True:
        if interactive:
            print("you> ", end="", flush=True, file=sys.stderr)
        line = sys.stdin.readline()
        if not line or not line.strip():
            return 0
        reply = "".join(chat.reply(line.strip()))
        script = prepare(persona, reply)
        n = config.llm.max_sentences
        said = " ".join(script.written[:n])
        chat.remember_spoken(said)
        print(f"{persona.name}: {' '.join(script.spoken[:n]) if args.transform else said}")
