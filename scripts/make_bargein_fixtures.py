#!/usr/bin/env python3
"""Regenerate tests/fixtures/bargein/: people interrupting the robot, in voices nothing else uses.

    .venv/bin/python scripts/make_bargein_fixtures.py

Festival's diphone voice ``ked`` (US male) and HTS voice ``cmu_us_slt_arctic_hts`` (US
female) say short interruptions (apt-get install festival festvox-kdlpc16k
festvox-us-slt-hts). Each clip is trimmed to its speech plus 50 ms, leveled to -20 dBFS
active level, 16 kHz mono; ``manifest.json`` lists text, voice and where the speech starts.

``robot_reply.wav`` is the robot itself (the bundled Piper voice) saying four lines, kept as a
recording so that the echo tests hear the same robot every run (Piper samples its noise anew
each time it speaks).
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

OUT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "bargein"
RATE = 16000
VOICES = {"ked": "voice_ked_diphone", "slt": "voice_cmu_us_slt_arctic_hts"}
LINES = [
    ("ked", "Wait, stop. What is your name?"),
    ("slt", "Hold on, where do you come from?"),
    ("ked", "Sorry to interrupt, what do you like to eat?"),
    ("slt", "Excuse me, can you say that again?"),
    ("ked", "Stop please. Tell me about the stars."),
    ("slt", "Wait a moment, who is your best friend?"),
    ("ked", "Hang on, what time is it now?"),
    ("slt", "No, listen to me. Do you like music?"),
    ("ked", "Stop talking, please. How old are you?"),
    ("slt", "Just a second, what is your job?"),
]


def speak(voice: str, text: str) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(["text2wave", "-o", str(wav), "-eval", f"({VOICES[voice]})"], input=text.encode(), check=True)
        audio, rate = sf.read(wav, dtype="float32")
    return soxr.resample(audio, rate, RATE).astype(np.float32)


def trim_and_level(audio: np.ndarray) -> np.ndarray:
    frame = RATE // 100
    n = len(audio) // frame
    levels = 20 * np.log10(np.sqrt(np.mean(audio[: n * frame].reshape(n, frame) ** 2, axis=1)) + 1e-9)
    loud = np.nonzero(levels > levels.max() - 40)[0]
    a, b = max(0, loud[0] * frame - 800), min(len(audio), (loud[-1] + 1) * frame + 800)
    clip = audio[a:b]
    active = clip[np.abs(clip) > 0.01 * np.abs(clip).max()]
    return (clip * 10 ** (-20 / 20) / np.sqrt(np.mean(active**2))).astype(np.float32)


ROBOT_LINES = [
    "Hello, I am a small robot, and I like to talk about the stars and the planets.",
    "Do you want to hear more about the rings of Saturn?",
    "They are made of ice and rock, and they shine in the sun.",
    "I could talk about them all day long, my friend.",
]


def robot_reply() -> np.ndarray:
    from companion.tts.piper import PiperSynthesizer

    piper = PiperSynthesizer()
    audio = np.concatenate([b for line in ROBOT_LINES for b in piper.synthesize(line)])
    return soxr.resample(audio, piper.sample_rate, RATE).astype(np.float32)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    sf.write(OUT / "robot_reply.wav", robot_reply(), RATE, subtype="PCM_16")
    clips = []
    for i, (voice, text) in enumerate(LINES, start=1):
        clip = trim_and_level(speak(voice, text))
        name = f"interrupt_{i:02d}.wav"
        sf.write(OUT / name, clip, RATE, subtype="PCM_16")
        clips.append(
            {"file": name, "voice": voice, "text": text, "onset_s": 0.05, "seconds": round(len(clip) / RATE, 3)}
        )
    manifest = {"rate": RATE, "robot": {"file": "robot_reply.wav", "lines": ROBOT_LINES}, "clips": clips}
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(clips)} clips to {OUT}")


if __name__ == "__main__":
    main()
