"""``companion voice``: prepare reference clips of a character, and test a persona's voice."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

from companion.errors import UserError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("voice", help="prepare voice reference clips; test a persona's voice")
    vsub = p.add_subparsers(dest="voice_command", metavar="ACTION", required=True)

    s = vsub.add_parser("prepare", help="clean clips of a character into one reference WAV")
    s.add_argument("clips", nargs="+", type=Path, metavar="CLIP", help="WAV/FLAC/OGG recordings")
    s.add_argument("-o", "--output", type=Path, required=True, metavar="REFERENCE.wav")
    s.add_argument("--rate", type=int, default=22050, help="output sample rate (default 22050)")
    s.add_argument("--min-segment", type=float, default=1.0, metavar="S", help="drop shorter segments")
    s.set_defaults(func=cmd_prepare)

    s = vsub.add_parser("test", help="speak the standard sentences and compare with the reference speaker")
    s.add_argument("--config", type=Path, help="config file (default: the search path)")
    s.add_argument("--persona", help="persona name (default: config's persona)")
    s.add_argument("-o", "--output-dir", type=Path, metavar="DIR", help="default: ./voice-test-PERSONA")
    s.add_argument("--baseline", action="store_true", help="also score the engine without match/effects")
    s.set_defaults(func=cmd_test)


def cmd_prepare(args: argparse.Namespace) -> int:
    from companion.voice.prepare import PrepareOptions, prepare_clips

    report = prepare_clips(args.clips, args.output, PrepareOptions(rate=args.rate, min_segment_s=args.min_segment))
    dropped = f"dropped {report.too_short} too short, {report.clipped} clipped"
    if not report.kept:
        raise UserError(f"no usable speech in {len(args.clips)} clip(s) ({dropped}); nothing written")
    print(f"{args.output}: {report.usable_s:.1f} s of usable speech in {report.kept} segments ({dropped})")
    for note in report.notes:
        print(f"warning: {note}", file=sys.stderr)
    return 0


def _references(voice: object) -> list[Path]:
    match = getattr(voice, "match", None)
    return [match] if match is not None else list(getattr(voice, "reference", ()))


def cmd_test(args: argparse.Namespace) -> int:
    from companion.app import cache_dir
    from companion.config import load_config
    from companion.persona import find_persona, load_persona
    from companion.tts import build_synthesizer
    from companion.voice.audio import load_mono, write_wav
    from companion.voice.similarity import SENTENCES

    config = load_config(args.config).config
    name = args.persona or config.persona
    persona = load_persona(name, config.personas_dir)
    voice = persona.voice.resolved(find_persona(name, config.personas_dir).parent)
    out: Path = args.output_dir or Path(f"voice-test-{name}")
    synth = build_synthesizer(config.tts, voice, cache_dir(config))
    spoken: list[np.ndarray] = []
    for i, text in enumerate(SENTENCES, 1):
        start = time.perf_counter()
        audio = np.concatenate([np.zeros(0, np.float32), *synth.synthesize(text)])
        took = time.perf_counter() - start
        path = out / f"{i:02d}.wav"
        write_wav(path, audio, synth.sample_rate)
        spoken.append(audio)
        seconds = audio.size / synth.sample_rate
        print(f"{path}: {seconds:.2f} s, real-time factor {took / max(seconds, 1e-6):.2f}  {text}")

    refs = _references(voice)
    if not refs:
        print(f"persona {name} has no voice.match or voice.reference clip: no similarity to report")
        return 0
    from companion.voice.similarity import SpeakerSimilarity

    sim = SpeakerSimilarity()
    target = sim.embed_many(load_mono(ref) for ref in refs)
    scores = [sim.cosine(sim.embed(a, synth.sample_rate), target) for a in spoken]
    print(
        f"similarity to {', '.join(map(str, refs))}: mean {np.mean(scores):.3f} "
        f"(min {min(scores):.3f}, max {max(scores):.3f}; 1.0 = same speaker)"
    )
    if args.baseline:
        plain_voice = dataclasses.replace(voice, match=None, effects=(), pitch_semitones=0.0)
        plain = build_synthesizer(config.tts, plain_voice, cache_dir(config))
        base = [
            sim.cosine(sim.embed(np.concatenate(list(plain.synthesize(t))), plain.sample_rate), target)
            for t in SENTENCES
        ]
        print(f"engine without match/effects: mean {np.mean(base):.3f}")
    return 0
