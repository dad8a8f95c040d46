#!/usr/bin/env python3
"""XTTS time-to-first-audio on the tiny random checkpoint (tests/xtts_tiny.py).

Measures, through the same path the daemon uses (build_synthesizer): model load, voice
latents (first start vs cached start) and the time from synthesize() to the first chunk,
median of several runs. The tiny GPT is much cheaper than the real 30-layer one, but the
HiFi-GAN decoder has XTTS's real size, so the decoder share of the latency is realistic.

    .venv/bin/python scripts/xtts_ttfa.py [--runs 7] [--chunk 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from xtts_tiny import build_tiny_xtts

from companion.config import TtsSettings
from companion.tts import build_synthesizer
from companion.tts.voice import VoiceSettings

REFERENCE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "long_utterance.wav"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--chunk", type=int, default=20, help="stream_chunk_size (GPT tokens per chunk)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xtts-ttfa-"))
    model_dir = build_tiny_xtts(work / "model", max_audio_tokens=60)
    tts = TtsSettings(engine="xtts", xtts_model_dir=model_dir, threads=args.threads)
    voice = VoiceSettings(engine="xtts", reference=(REFERENCE,))
    starts = []
    for _ in range(2):
        t0 = time.perf_counter()
        synth = build_synthesizer(tts, voice, work / "cache")
        starts.append(time.perf_counter() - t0)
    print(f"start (load + voice latents): first {starts[0]:.2f} s, with cached latents {starts[1]:.2f} s")
    synth.stream_chunk_size = args.chunk  # type: ignore[attr-defined]
    firsts, totals, lengths = [], [], []
    list(synth.synthesize("Warm up."))
    for i in range(args.runs):
        t0 = time.perf_counter()
        n = 0
        for j, chunk in enumerate(synth.synthesize(f"Hello there, this is test number {i + 1}.")):
            if j == 0:
                firsts.append(time.perf_counter() - t0)
            n += chunk.size
        totals.append(time.perf_counter() - t0)
        lengths.append(n / synth.sample_rate)
    print(
        f"time to first audio (stream_chunk_size={args.chunk}, {args.threads} threads): "
        f"median {statistics.median(firsts) * 1000:.0f} ms over {args.runs} runs "
        f"(min {min(firsts) * 1000:.0f}, max {max(firsts) * 1000:.0f})"
    )
    print(f"whole sentence: median {statistics.median(totals):.2f} s for {statistics.median(lengths):.2f} s of audio")


if __name__ == "__main__":
    main()
