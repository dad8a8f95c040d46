#!/usr/bin/env python3
"""Regenerate tests/fixtures/pauses/: people who pause mid-sentence, and a changing room.

    .venv/bin/python scripts/make_pause_fixtures.py

Voices no other fixture (and no shipped model) uses: flite's kal16, awb, rms and slt,
and espeak-ng ``en-gb+m3``. Each voice file is a session of turns 1.6 s apart; a
*paused* turn is spoken in two parts with a 0.40-0.90 s pause where people hesitate
("I want to tell you about my | trip to the lake"), a *complete* turn in one go. The
manifest (``fixtures.json``, same schema as tests/fixtures/) gives each turn's text,
``start_s``/``end_s`` of the dry speech and its ``pauses``.

Three more files, for the turn detector's background tracking:

- ``fan.flac``: a turn, then a fan (steady low rumble, motor hum) switches on at 12 dB
  under speech level, and 1.5 s later a turn over the fan; ``events`` has the switch-on.
- ``tv.flac``: the same with a TV-like sound (band-limited noise swelling at word rate).
- ``room_tone.flac``: background only, brighter and 12 dB louder than the sessions'
  own; ``companion bench --fixtures tests/fixtures/pauses`` fills its pauses with it.

The room, background bed, levels and seeds come from tests/fixtures/make_fixtures.py.
Needs flite and espeak-ng (``apt-get install flite espeak-ng``) and the project's venv.
FLAC keeps the directory under 2 MB.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from fixtures.make_fixtures import (  # noqa: E402
    SPEECH_DBFS,
    SR,
    FloatArray,
    active_rms,
    background,
    room,
    seed_for,
    shaped_noise,
    to_int16,
    trim,
)

OUT = REPO / "tests" / "fixtures" / "pauses"
SNR_DB = 25.0
LEAD_S = 0.4
GAP_S = 1.6
"""Between turns: longer than the longest hold (vad.max_end_silence_ms) plus a frame."""
TAIL_S = 1.6

VOICES = {
    "kal16": ("flite", "kal16", "flite kal16 (US male, diphone)"),
    "awb": ("flite", "awb", "flite awb (Scottish male)"),
    "rms": ("flite", "rms", "flite rms (US male)"),
    "slt": ("flite", "slt", "flite slt (US female)"),
    "gb_m3": ("espeak", "en-gb+m3", "espeak-ng en-gb+m3, 160 wpm"),
}

# voice -> turns; "|" marks a pause of the given seconds (0 = a complete turn, no pause)
SESSIONS: dict[str, list[tuple[str, float]]] = {
    "kal16": [
        ("I want to tell you about my | trip to the lake last weekend.", 0.6),
        ("Why is the sky blue?", 0.0),
        ("Can you remind me to buy | some milk and bread tomorrow?", 0.85),
    ],
    "awb": [
        ("My sister lives in a small town near | the coast.", 0.45),
        ("Please set a timer for ten minutes.", 0.0),
        ("I was thinking that we could | go for a walk after lunch.", 0.75),
    ],
    "rms": [
        ("What do you think about | painting the kitchen blue?", 0.9),
        ("I had a wonderful day at the beach.", 0.0),
        ("I need to call my brother because | it is his birthday.", 0.5),
    ],
    "slt": [
        ("Um | could you play some quiet music?", 0.7),
        ("Where did you learn to speak so well?", 0.0),
        ("Yesterday I saw a really big | dog in the park.", 0.65),
        ("Let's play a word game.", 0.0),
    ],
    "gb_m3": [
        ("Tell me something about the | history of trains.", 0.8),
        ("Do you know any songs about the moon?", 0.0),
        ("My favourite food is pasta with | tomato sauce and cheese.", 0.4),
    ],
}

NOISE_DB = -12.0
"""Fan and TV level relative to speech (speech 12 dB above them)."""
NOISY = {
    "fan.flac": ("awb", ["Good morning, how did you sleep?", "It is a bit noisy in here today."]),
    "tv.flac": ("slt", ["What are we having for dinner?", "Can you turn the sound down?"]),
}
NOISE_AFTER_S = 1.6
"""The fan or TV starts this long after the first turn (once it is over), and the second
turn 1.5 s after that."""


def synth(text: str, voice: str) -> FloatArray:
    engine, name, _ = VOICES[voice]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "out.wav"
        if engine == "flite":
            subprocess.run(["flite", "-voice", name, "-t", text, "-o", str(path)], check=True)
        else:
            subprocess.run(["espeak-ng", "-v", name, "-s", "160", "-w", str(path), text], check=True)
        audio, rate = sf.read(path, dtype="float32")
    audio = soxr.resample(audio, rate, SR).astype(np.float32)
    audio = trim(audio)
    return (audio * (10 ** (SPEECH_DBFS / 20) / active_rms(audio))).astype(np.float32)


def fan(rng: np.random.Generator, n: int) -> FloatArray:
    """Steady rumble (brown-ish noise) with a motor hum at 120 Hz and its harmonics."""
    t = np.arange(n) / SR
    hum = sum(a * np.sin(2 * np.pi * f * t) for a, f in ((1.0, 120.0), (0.5, 240.0), (0.25, 360.0)))
    out = shaped_noise(rng, n, 1.6) + 0.3 * hum / np.sqrt(np.mean(hum**2))
    return (out / np.sqrt(np.mean(out**2))).astype(np.float32)


def tv(rng: np.random.Generator, n: int) -> FloatArray:
    """Speech-band noise (300-3000 Hz) swelling at 3-5 Hz, like a TV heard from the next room."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SR)
    band = np.fft.irfft(spectrum * ((freqs > 300) & (freqs < 3000)), n)
    t = np.arange(n) / SR
    swell = 1.0 + 0.5 * np.sin(2 * np.pi * 3.7 * t) * np.sin(2 * np.pi * 0.9 * t + 1.0)
    out = band * swell
    return (out / np.sqrt(np.mean(out**2))).astype(np.float32)


def mix(name: str, dry: FloatArray, bed: FloatArray) -> FloatArray:
    rng = np.random.default_rng(seed_for("pauses", name))
    out = room(rng, dry)[: len(dry)] + bed
    peak = float(np.max(np.abs(out)))
    return (out / peak * 0.9 if peak > 0.9 else out).astype(np.float32)


def write(name: str, audio: FloatArray) -> dict[str, Any]:
    sf.write(OUT / name, to_int16(audio), SR, format="FLAC", subtype="PCM_16")
    return {"sample_rate": SR, "channels": 1, "frames": len(audio), "duration_s": round(len(audio) / SR, 3)}


def lay_out(turns: list[tuple[str, float]], voice: str) -> tuple[FloatArray, list[dict[str, Any]]]:
    pieces: list[tuple[FloatArray, float]] = []
    out: list[dict[str, Any]] = []
    at = LEAD_S
    for text, pause_s in turns:
        parts = [p.strip() for p in text.split("|")]
        start = at
        pauses = []
        for i, part in enumerate(parts):
            audio = synth(part, voice)
            pieces.append((audio, at))
            at += len(audio) / SR
            if i < len(parts) - 1:
                pauses.append({"start_s": round(at, 4), "end_s": round(at + pause_s, 4)})
                at += pause_s
        entry = {"text": " ".join(parts), "start_s": round(start, 4), "end_s": round(at, 4), "pauses": pauses}
        out.append(entry)
        at += GAP_S
    dry = np.zeros(round((at - GAP_S + TAIL_S) * SR), np.float32)
    for audio, t in pieces:
        i = round(t * SR)
        dry[i : i + len(audio)] += audio
    return dry, out


def make_all() -> dict[str, Any]:
    OUT.mkdir(parents=True, exist_ok=True)
    files: dict[str, Any] = {}
    for voice, turns in SESSIONS.items():
        name = f"{voice}.flac"
        dry, laid = lay_out(turns, voice)
        bed = background(np.random.default_rng(seed_for("bed", name)), len(dry), SPEECH_DBFS - SNR_DB)
        info = write(name, mix(name, dry, bed))
        files[name] = {"kind": "session", "voice": voice, "snr_db": SNR_DB, **info, "turns": laid}
        print(f"{name}: {info['duration_s']:.1f} s, {len(laid)} turns")

    for name, (voice, texts) in NOISY.items():
        dry, laid = lay_out([(t, 0.0) for t in texts], voice)
        noise_at = round(laid[0]["end_s"] + NOISE_AFTER_S, 2)
        shift = noise_at + 1.5 - laid[1]["start_s"]
        dry = np.concatenate([dry[: round(laid[0]["end_s"] * SR + 0.5 * SR)], np.zeros(round(shift * SR), np.float32),
                              dry[round(laid[0]["end_s"] * SR + 0.5 * SR) :]])  # fmt: skip
        for key in ("start_s", "end_s"):
            laid[1][key] = round(laid[1][key] + shift, 4)
        rng = np.random.default_rng(seed_for("noise", name))
        bed = background(rng, len(dry), SPEECH_DBFS - SNR_DB)
        noise = (fan if name == "fan.flac" else tv)(rng, len(dry)) * 10 ** ((SPEECH_DBFS + NOISE_DB) / 20)
        onset = round(noise_at * SR)
        bed[onset:] += noise[onset:] * np.minimum(np.arange(len(dry) - onset) / (0.05 * SR), 1.0)
        info = write(name, mix(name, dry, bed))
        kind = "fan" if name == "fan.flac" else "tv"
        files[name] = {
            "kind": "session", "voice": voice, "snr_db": SNR_DB, **info, "turns": laid,
            "events": [{"kind": f"{kind} starts", "start_s": noise_at, "level_db": SPEECH_DBFS + NOISE_DB}],
        }  # fmt: skip
        print(f"{name}: {info['duration_s']:.1f} s, a {kind} from {noise_at} s")

    name = "room_tone.flac"
    rng = np.random.default_rng(seed_for("room", name))
    n = 3 * SR
    tone = 0.7 * shaped_noise(rng, n, 0.5) + 0.7 * background(rng, n, 0.0)  # brighter: more hiss
    tone = tone / np.sqrt(np.mean(tone**2)) * 10 ** ((SPEECH_DBFS - SNR_DB + 12.0) / 20)
    info = write(name, tone.astype(np.float32))
    files[name] = {"kind": "noise", "snr_db": SNR_DB - 12.0, **info, "text": "", "turns": [], "events": []}

    return {
        "about": "People who pause mid-sentence, and rooms that change; see scripts/make_pause_fixtures.py.",
        "regenerate": ".venv/bin/python scripts/make_pause_fixtures.py",
        "sample_rate": SR,
        "speech_dbfs": SPEECH_DBFS,
        "voices": {k: v[2] for k, v in VOICES.items()},
        "files": dict(sorted(files.items())),
    }


def main() -> int:
    manifest = make_all()
    (OUT / "fixtures.json").write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"total {total / 1e6:.2f} MB in {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
