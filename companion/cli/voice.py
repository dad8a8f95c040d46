"""``companion voice``: from films to a character's voice (studio, review, export), prepare clips, test a voice."""

from __future__ import annotations

import argparse
import contextlib
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

    s = vsub.add_parser("studio", help="cut media (films, recordings) into speech segments sorted by speaker")
    s.add_argument("sources", nargs="+", type=Path, metavar="SOURCE", help="any media: MKV, MP4, WAV, ...")
    s.add_argument("-o", "--output", type=Path, required=True, metavar="WORKSPACE", help="workspace directory")
    s.add_argument("--range", action="append", default=[], metavar="HH:MM:SS-HH:MM:SS", help="only these spans")
    s.add_argument("--target", action="append", default=[], type=Path, metavar="CLIP", help="example of the voice")
    s.add_argument("--auto", action="store_true", help="take the predictions as decisions (for scripting)")
    s.add_argument("--embedding", default="auto", choices=("auto", "resemblyzer", "mfcc"), help="speaker embedding")
    s.add_argument("--no-isolate", action="store_true", help="skip vocal isolation even if demucs is installed")
    s.set_defaults(func=cmd_studio)

    s = vsub.add_parser("review", help="review a studio workspace in the browser (local page)")
    s.add_argument("workspace", type=Path, metavar="WORKSPACE")
    s.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    s.add_argument("--no-browser", action="store_true", help="only print the page's address")
    s.set_defaults(func=cmd_review)

    s = vsub.add_parser("export", help="write reference.wav, an LJSpeech dataset and a persona voice snippet")
    s.add_argument("workspace", type=Path, metavar="WORKSPACE")
    s.add_argument("-o", "--output", type=Path, metavar="DIR", help="default: WORKSPACE/export")
    s.add_argument("--max-reference", type=float, default=60.0, metavar="S", help="longest reference (default 60)")
    s.set_defaults(func=cmd_export)


def cmd_studio(args: argparse.Namespace) -> int:
    from companion.studio.pipeline import StudioOptions, run_studio
    from companion.studio.progress import parse_range

    opts = StudioOptions(
        ranges=tuple(parse_range(r) for r in args.range),
        targets=tuple(args.target),
        auto=args.auto,
        embedder=args.embedding,
        isolate=not args.no_isolate,
    )
    run_studio(args.sources, args.output, opts)
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    import webbrowser

    from companion.studio.review import ReviewServer
    from companion.studio.workspace import Workspace

    server = ReviewServer(Workspace.open(args.workspace), port=args.port)
    print(f"review page: {server.url}  (Ctrl-C to stop; decisions are saved as you make them)", flush=True)
    if not args.no_browser:
        try:
            webbrowser.get().open(server.url)
        except webbrowser.Error:
            print("no browser found here: open the address above", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from companion.studio.export import export
    from companion.studio.workspace import Workspace

    report = export(Workspace.open(args.workspace), args.output, max_s=args.max_reference)
    print(f"{report.reference}: {report.reference_s:.1f} s of target speech")
    print(f"{report.reference.parent / 'dataset'}: {report.dataset_clips} clips, {report.dataset_s:.1f} s (LJSpeech)")
    for note in report.notes:
        print(f"warning: {note}", file=sys.stderr)
    print(f"persona snippet ({report.reference.parent / 'voice.yaml'}):\n{report.snippet}", end="")
    return 0


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
