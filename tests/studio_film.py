"""A synthetic "film" for the voice studio tests: three flite voices talking in turns, with
overlaps, a music bed, a loud music cue and noise bursts, muxed by PyAV into an MKV with an
AC3 soundtrack (and a tiny video stream). The ground truth says who speaks when.

Target speaker: flite ``kal16`` (a diphone voice, robotic like a translator box); the others
are ``slt`` and ``awb``. None of them is used by a shipped model.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

RATE = 48000
TARGET, OTHERS = "kal16", ("slt", "awb")

LINES = (
    (TARGET, "Hello friend. I am happy you are awake now."),
    ("slt", "Where am I? Why is the ship so cold?"),
    (TARGET, "You are on my ship. I fix the heater soon."),
    ("awb", "The engine is making a strange sound again."),
    (TARGET, "Engine is fine. The sound is normal for Erid ships."),
    ("slt", "Can you show me how the fuel system works?"),
    (TARGET, "Yes. I show you tomorrow. Now you sleep."),
    ("awb", "I have never seen a machine like this one."),
    (TARGET, "I build it with my own hands, many years ago."),
    ("slt", "Your hands are amazing. How many do you have?"),
    (TARGET, "Five hands. Five is a good number for engineers."),
    ("awb", "We should check the hull before the storm arrives."),
    (TARGET, "Good idea. I bring the tools and the light."),
    ("slt", "Thank you for saving my life out there."),
    (TARGET, "You are my friend. Friends help each other always."),
    ("awb", "Let us eat something warm before we start."),
    (TARGET, "I do not eat your food. It smells very strange to me."),
    ("slt", "That is fair. I would not eat your food either."),
    (TARGET, "We make a plan together and then we go home."),
    ("awb", "Home sounds good to me, my friend."),
)
OVERLAP_AFTER = (3, 9, 15)
"""The line after each of these starts while this one is still being spoken."""
TARGET_CLIP_TEXTS = (
    "My name is not important. I am the engineer on this ship.",
    "Every star has a story. Tell me yours and I tell you mine.",
)


@dataclass
class Film:
    path: Path
    duration_s: float
    speech: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    """Speaker -> intervals where that speaker is audible (trimmed of silence)."""
    overlaps: list[tuple[float, float]] = field(default_factory=list)
    music_only: list[tuple[float, float]] = field(default_factory=list)
    loud_beds: list[tuple[float, float]] = field(default_factory=list)
    """Loud music cues and noise bursts that speech was laid over."""


def flite(voice: str, text: str, rate: int = RATE) -> np.ndarray:
    import soundfile

    from companion.voice.audio import resample

    if shutil.which("flite") is None:
        raise RuntimeError("flite is missing: scripts/system-deps.sh test")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "line.wav"
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True)
        audio, sr = soundfile.read(str(out), dtype="float32")
    audio = resample(audio, sr, rate)
    return (audio / max(1e-6, float(np.max(np.abs(audio)))) * 0.5).astype(np.float32)


def _active(audio: np.ndarray, rate: int) -> tuple[float, float]:
    env = np.convolve(np.abs(audio), np.ones(480) / 480, mode="same")
    on = np.flatnonzero(env > 0.01)
    return (on[0] / rate, on[-1] / rate) if on.size else (0.0, 0.0)


def _music(seconds: float, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    chord_s = 2.5
    roots = rng.choice([110.0, 130.8, 146.8, 164.8, 196.0], size=int(seconds / chord_s) + 1)
    for i, root in enumerate(roots):
        sl = slice(int(i * chord_s * RATE), int((i + 1) * chord_s * RATE))
        for ratio in (1.0, 1.25, 1.5, 2.0):
            for h in (1, 2, 3):
                out[sl] += np.sin(2 * np.pi * root * ratio * h * t[sl]) / (h * 4)
    return (out / np.max(np.abs(out))).astype(np.float32)


def make_film(path: Path, seed: int = 3) -> Film:
    rng = np.random.default_rng(seed)
    lines = [(who, flite(who, text)) for who, text in LINES]
    cursor, placed = 1.0, []
    for i, (who, audio) in enumerate(lines):
        a, b = _active(audio, RATE)
        placed.append((who, cursor, audio, cursor + a, cursor + b))
        cursor += audio.size / RATE
        cursor = cursor - 1.0 if i in OVERLAP_AFTER else cursor + rng.uniform(0.4, 0.9)
        if i == 11:
            cursor += 5.0  # a music-only cue here
    total = cursor + 1.5
    mix = np.zeros(int(total * RATE), np.float32)
    film = Film(path, total)
    for who, start, audio, a, b in placed:
        s = int(start * RATE)
        mix[s : s + audio.size] += audio
        film.speech.setdefault(who, []).append((a, b))
    for i in OVERLAP_AFTER:
        film.overlaps.append((placed[i + 1][3], placed[i][4]))
    music = _music(total, rng)
    bed = np.full(mix.size, 0.015, np.float32)  # a quiet score under everything
    cue_start = placed[11][1] + placed[11][2].size / RATE + 0.6
    film.music_only.append((cue_start, cue_start + 4.0))
    bed[int(cue_start * RATE) : int((cue_start + 4.0) * RATE)] = 0.25
    loud = placed[12]  # a loud cue under one target line
    film.loud_beds.append((loud[1], loud[1] + loud[2].size / RATE))
    bed[int(loud[1] * RATE) : int((loud[1] + loud[2].size / RATE) * RATE)] = 0.3
    mix += music * bed
    burst = placed[7]  # an explosion under one line of another speaker
    n = int(1.2 * RATE)
    noise = rng.standard_normal(n).astype(np.float32) * np.hanning(n).astype(np.float32) * 0.35
    bs = int((burst[1] + 0.3) * RATE)
    mix[bs : bs + n] += noise
    film.loud_beds.append((burst[1] + 0.3, burst[1] + 1.5))
    write_media(path, mix, RATE, video=True)
    return film


def write_media(path: Path, audio: np.ndarray, rate: int, *, video: bool = False) -> None:
    """MKV (AC3) or MP4 (AAC) by suffix; stereo; an optional 32x32 video stream."""
    import av

    codec = "ac3" if path.suffix == ".mkv" else "aac"
    stereo = np.stack([audio, audio * 0.9]).astype(np.float32)
    with av.open(str(path), "w") as out:
        vstream = None
        if video:
            vstream = out.add_stream("mpeg4", rate=2)
            vstream.width, vstream.height, vstream.pix_fmt = 32, 32, "yuv420p"
        astream = out.add_stream(codec, rate=rate, layout="stereo")
        frame_n = 1536 if codec == "ac3" else 1024
        fmt = "fltp"
        for i in range(0, stereo.shape[1], frame_n):
            block = np.ascontiguousarray(stereo[:, i : i + frame_n])
            if block.shape[1] < frame_n:
                block = np.pad(block, ((0, 0), (0, frame_n - block.shape[1])))
            frame = av.AudioFrame.from_ndarray(block, format=fmt, layout="stereo")
            frame.sample_rate, frame.pts = rate, i
            out.mux(astream.encode(frame))
        out.mux(astream.encode(None))
        if vstream is not None:
            for k in range(int(stereo.shape[1] / rate * 2)):
                img = np.full((32, 32, 3), (k * 7) % 255, np.uint8)
                vf = av.VideoFrame.from_ndarray(img, format="rgb24")
                vf.pts = k
                out.mux(vstream.encode(vf))
            out.mux(vstream.encode(None))


def make_target_clips(folder: Path) -> list[Path]:
    """Two clips of the target voice with lines not in the film, as MP4 (AAC)."""
    clips = []
    for i, text in enumerate(TARGET_CLIP_TEXTS, 1):
        clip = folder / f"target-{i}.mp4"
        write_media(clip, flite(TARGET, text), RATE)
        clips.append(clip)
    return clips


def _covered(spans: list[tuple[float, float]], start: float, end: float) -> float:
    return sum(max(0.0, min(b, end) - max(a, start)) for a, b in spans)


@dataclass(frozen=True)
class Accuracy:
    purity: float
    """Share of the speech in segments marked target that is the target speaking."""
    recall: float
    """Share of the target's speech that lies in segments marked target."""
    overlap_rate: float
    """Share of the overlaps that fall (mostly) in a segment flagged overlap."""
    target_s: float


def measure(segments: list, film: Film) -> Accuracy:
    """Score the decisions in ``segments`` (studio Segments) against the film's ground truth."""
    target = film.speech[TARGET]
    others = [span for who in OTHERS for span in film.speech[who]]
    hit = miss = 0.0
    for seg in segments:
        if seg.decision != "target":
            continue
        a, b = seg.start_s + seg.trim_start_s, seg.end_s - seg.trim_end_s
        hit += _covered(target, a, b)
        miss += _covered(others, a, b)
    flagged = [(s.start_s, s.end_s) for s in segments if "overlap" in s.flags]
    found = sum(_covered(flagged, a, b) >= 0.5 * (b - a) for a, b in film.overlaps)
    total = sum(b - a for a, b in target)
    return Accuracy(hit / max(hit + miss, 1e-9), hit / total, found / len(film.overlaps), hit)


@dataclass(frozen=True)
class StudioRun:
    film: Film
    targets: list[Path]
    workspace: Path
    output: str


_RUNS: dict[str, StudioRun] = {}


def studio_run(factory) -> StudioRun:
    """The film, cut by ``companion voice studio --auto`` once per test session (shared by modules)."""
    if "run" not in _RUNS:
        import contextlib
        import io

        from companion.cli import main

        folder = factory.mktemp("film")
        film = make_film(folder / "film.mkv")
        targets = make_target_clips(folder)
        workspace = folder / "ws"
        args = ["voice", "studio", str(film.path), "-o", str(workspace), "--auto"]
        for clip in targets:
            args += ["--target", str(clip)]
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            assert main(args) == 0
        _RUNS["run"] = StudioRun(film, targets, workspace, err.getvalue())
    return _RUNS["run"]
