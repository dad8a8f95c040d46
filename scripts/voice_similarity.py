#!/usr/bin/env python3
"""Benchmark voice match on Piper: speaker similarity (plain vs matched) and real-time factor.

Reference speakers that no shipped model uses: flite's kal16, awb, rms (a male US voice,
the closest to Piper's joe) and slt, and espeak-ng en-us+m3. Speaks the standard sentence
set (held out: voice.match calibrates on other sentences) with plain Piper and with the
self-calibrating ``voice.match`` toward each reference, and prints the mean resemblyzer
cosine similarity to the reference speaker.

Needs: scripts/system-deps.sh test (flite, espeak-ng); pip install --no-deps resemblyzer
(with torch and librosa).

    .venv/bin/python scripts/voice_similarity.py [--out DIR]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from companion.tts.piper import PiperSynthesizer
from companion.tts.voice import VoiceSettings
from companion.voice import wrap
from companion.voice.audio import load_mono, write_wav
from companion.voice.similarity import SENTENCES, SpeakerSimilarity

REFERENCE_TEXT = (
    "Once upon a time, a small grey robot lived at the edge of a busy harbour. "
    "Every morning it counted the boats, listened to the gulls and told stories to anyone who stopped. "
    "Some people laughed, some people stayed, and a few came back every single day to hear the next part. "
    "The robot never tired of talking, because every listener brought a new question."
)


FLITE = ("kal16", "awb", "rms", "slt")
ESPEAK = ("en-us+m3",)


def make_references(out: Path, voices: tuple[str, ...] = (*FLITE, *ESPEAK)) -> dict[str, Path]:
    refs: dict[str, Path] = {}
    for voice in voices:
        tool = "flite" if voice in FLITE else "espeak-ng"
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: scripts/system-deps.sh test")
        name = f"flite-{voice}" if tool == "flite" else f"espeak-{voice}"
        path = out / f"ref-{name}.wav"
        if tool == "flite":
            cmd = ["flite", "-voice", voice, "-t", REFERENCE_TEXT, "-o", str(path)]
        else:
            cmd = ["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), REFERENCE_TEXT]
        subprocess.run(cmd, check=True)
        refs[name] = path
    return refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="keep the WAVs here (default: a temp dir)")
    parser.add_argument("voices", nargs="*", help="flite/espeak-ng voices (default: all five)")
    args = parser.parse_args()
    logging.basicConfig(format="%(message)s")
    logging.getLogger("companion.voice").setLevel(logging.INFO)
    out = args.out or Path(tempfile.mkdtemp(prefix="voice-sim-"))
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = out / "cache"

    piper = PiperSynthesizer("default")
    sim = SpeakerSimilarity()
    refs = make_references(out, tuple(args.voices) if args.voices else (*FLITE, *ESPEAK))
    for text in SENTENCES[:2]:  # warm up Piper and the encoder
        list(piper.synthesize(text))

    plain_audio = [np.concatenate(list(piper.synthesize(s))) for s in SENTENCES]
    print(f"{'reference':<16} {'plain':>7} {'matched':>8} {'gain':>7}   plan")
    rtfs: list[float] = []
    for name, ref in refs.items():
        ref_audio, ref_rate = load_mono(ref)
        ref_embed = sim.embed(ref_audio, ref_rate)
        began = time.perf_counter()
        matched = wrap(piper, VoiceSettings(match=ref), cache_dir)
        print(f"{name}: voice match prepared in {time.perf_counter() - began:.1f} s", flush=True)
        plain_sims, matched_sims = [], []
        for i, text in enumerate(SENTENCES):
            start = time.perf_counter()
            audio = np.concatenate(list(matched.synthesize(text)))
            rtfs.append((time.perf_counter() - start) / (audio.size / matched.sample_rate))
            write_wav(out / f"{name}-{i:02d}-matched.wav", audio, matched.sample_rate)
            plain_sims.append(sim.cosine(sim.embed(plain_audio[i], piper.sample_rate), ref_embed))
            matched_sims.append(sim.cosine(sim.embed(audio, matched.sample_rate), ref_embed))
        plain, match = statistics.mean(plain_sims), statistics.mean(matched_sims)
        wins = sum(m > p for m, p in zip(matched_sims, plain_sims, strict=True))
        stages = getattr(matched, "stages", ())
        plan = getattr(stages[0], "formant_ratio", 1.0) if stages else 1.0
        print(
            f"{name:<16} {plain:7.3f} {match:8.3f} {match - plain:+7.3f}   "
            f"formants x{plan:.3f}, matched closer on {wins}/{len(SENTENCES)} sentences",
            flush=True,
        )
    print(
        f"matched path real-time factor (Piper + WORLD): median {statistics.median(rtfs):.3f}, "
        f"max {max(rtfs):.3f} over {len(rtfs)} sentences"
    )
    plain_rtf = []
    for text in SENTENCES:
        start = time.perf_counter()
        audio = np.concatenate(list(piper.synthesize(text)))
        plain_rtf.append((time.perf_counter() - start) / (audio.size / piper.sample_rate))
    print(f"plain Piper real-time factor: median {statistics.median(plain_rtf):.3f}")
    print(f"WAVs in {out}")


if __name__ == "__main__":
    main()
