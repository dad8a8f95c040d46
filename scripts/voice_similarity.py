#!/usr/bin/env python3
"""Benchmark voice match on Piper: speaker similarity (plain vs matched) and real-time factor.

Builds three reference speakers that Piper's joe is not:
  espeak-m   espeak-ng en-us+m3 (formant synthesis, male)
  espeak-f   espeak-ng en-us+f4 (formant synthesis, female)
  joe-sox    Piper joe re-pitched by sox's WSOLA ``pitch`` (+7 semitones, formants move too)
then speaks the standard sentence set with plain Piper and with ``voice.match`` toward each
reference, and prints the mean resemblyzer cosine similarity to the reference speaker.

Needs: apt-get install espeak-ng sox; pip install pyworld 'setuptools<81' pedalboard;
pip install --no-deps resemblyzer (with torch and librosa).

    .venv/bin/python scripts/voice_similarity.py [--out DIR]
"""

from __future__ import annotations

import argparse
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


def make_references(out: Path, piper: PiperSynthesizer) -> dict[str, Path]:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install espeak-ng sox")
    refs: dict[str, Path] = {}
    for name, voice in (("espeak-m", "en-us+m3"), ("espeak-f", "en-us+f4")):
        path = out / f"ref-{name}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), REFERENCE_TEXT], check=True)
        refs[name] = path
    joe = out / "joe-plain.wav"
    write_wav(joe, np.concatenate(list(piper.synthesize(REFERENCE_TEXT))), piper.sample_rate)
    refs["joe-sox"] = out / "ref-joe-sox.wav"
    subprocess.run(["sox", str(joe), str(refs["joe-sox"]), "pitch", "700"], check=True)
    return refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="keep the WAVs here (default: a temp dir)")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="voice-sim-"))
    out.mkdir(parents=True, exist_ok=True)
    cache_dir = out / "cache"

    piper = PiperSynthesizer("default")
    sim = SpeakerSimilarity()
    refs = make_references(out, piper)
    for text in SENTENCES[:2]:  # warm up Piper and the encoder
        list(piper.synthesize(text))

    plain_audio = [np.concatenate(list(piper.synthesize(s))) for s in SENTENCES]
    print(f"{'reference':<10} {'plain':>7} {'matched':>8} {'gain':>7}   plan")
    rtfs: list[float] = []
    for name, ref in refs.items():
        ref_audio, ref_rate = load_mono(ref)
        ref_embed = sim.embed(ref_audio, ref_rate)
        matched = wrap(piper, VoiceSettings(match=ref), cache_dir)
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
        plan = getattr(stages[0], "formant_ratio", float("nan")) if stages else float("nan")
        print(f"{name:<10} {plain:7.3f} {match:8.3f} {match - plain:+7.3f}   "
              f"formants x{plan:.3f}, matched closer on {wins}/{len(SENTENCES)} sentences")
    print(f"matched path real-time factor (Piper + WORLD): median {statistics.median(rtfs):.3f}, "
          f"max {max(rtfs):.3f} over {len(rtfs)} sentences")
    plain_rtf = []
    for text in SENTENCES:
        start = time.perf_counter()
        audio = np.concatenate(list(piper.synthesize(text)))
        plain_rtf.append((time.perf_counter() - start) / (audio.size / piper.sample_rate))
    print(f"plain Piper real-time factor: median {statistics.median(plain_rtf):.3f}")
    print(f"WAVs in {out}")


if __name__ == "__main__":
    main()
