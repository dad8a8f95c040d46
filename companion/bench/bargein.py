"""``companion bench --barge-in``: talking over the robot, on the real audio path.

A private PulseAudio server gives the daemon a microphone and a speaker; a
:class:`~companion.bench.room.Room` feeds the speaker back into the microphone
(echo at ``gain_db``, ~40 ms, some reverberation) and mixes in people who interrupt.
The daemon is a real ``companion run`` on the default devices. Measured:

- false barge-ins: the robot says ``replies`` lines with nobody talking; any
  interruption is its own echo fooling it;
- reaction: a recorded person interrupts a long reply; from the onset of their
  voice to the robot's voice falling silent, on the room's timeline;
- whether the interruption was heard right (word error rate of the next turn);
- ERLE and the echo canceller's CPU cost, from the daemon's ``/status``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from companion.audio.io import write_wav
from companion.bench.pulse import PulseServer
from companion.bench.room import RATE, Room
from companion.bench.words import wer, words_right

BARGE_IN = "barge-in: the user spoke over reply"
"""The daemon's log line for an interruption it acted on (not one it recognised as its own echo)."""
SAID = "companion.loop.play: said"
"""A reply ended, whole ("said: ...") or cut by a barge-in ("said (interrupted): ...")."""
REFUSED = "not a barge-in: the robot's own echo"
"""...and for one it recognised as its own echo."""
WENT_ON = "the robot's voice goes on"
"""...and for a pause for a voice (listen.barge_in_pause_ms) that did not interrupt."""
CLIPS_DIR = Path(__file__).resolve().parent.parent.parent / "tests" / "fixtures" / "bargein"

PERSONA = """\
name: Robot
system_prompt: You are Robot, a cheerful little robot. Always answer in one short sentence.
greeting: Hello there, I am awake now and ready to talk with you about anything you like.
fallback: Sorry, I missed that.
"""
LINES = [
    "The stars are very far away, and they shine all night.",
    "I like to watch the rain fall on the window.",
    "My wheels are small, but they can take me anywhere.",
    "Music makes my circuits feel warm and happy.",
    "Today I learned a new word, and it was wonderful.",
]
LONG = (
    "Let me tell you a long story about the sea. A small boat sailed out one morning, and the wind was calm. "
    "The sailor sang a song about the fish, the birds and the clouds above the water."
)


@dataclass
class BargeInRun:
    gain_db: float
    pause_ms: int | None = None
    """listen.barge_in_pause_ms, if the run set it."""
    replies: int = 0
    false_barge_ins: int = 0
    reactions_ms: list[float] = field(default_factory=list)
    wers: list[float] = field(default_factory=list)
    heard: list[str] = field(default_factory=list)
    words_right: list[int] = field(default_factory=list)
    """Per interruption heard: how many of its words were heard, in order."""
    missed: int = 0
    """Interruptions the robot did not react to."""
    understood: int = 0
    """Interruptions that stopped the robot and had two or more of their words heard."""
    refused: int = 0
    """Would-be barge-ins the daemon recognised as its own echo (over the whole session)."""
    stutters: int = 0
    """Times the robot paused its voice for a voice and went on (no interruption followed)."""
    echo: dict[str, object] = field(default_factory=dict)
    """The daemon's echo status after the echo-only part (ERLE, CPU cost per 10 ms frame)."""

    def summary(self) -> dict[str, object]:
        r = sorted(self.reactions_ms)
        return {
            **asdict(self),
            "reaction_median_ms": round(statistics.median(r), 1) if r else None,
            "reaction_p95_ms": round(r[min(len(r) - 1, int(0.95 * len(r)))], 1) if r else None,
            "wer_mean": round(statistics.fmean(self.wers), 3) if self.wers else None,
        }


class _Daemon:
    """A ``companion run`` subprocess with its log lines collected."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.log = log
        threading.Thread(target=self._read, name="bench-daemon-log", daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        with self.log.open("w", encoding="utf-8") as out:  # as it comes, to follow a long run
            for line in self.proc.stderr:
                self.lines.append(line.rstrip())
                out.write(line)
                out.flush()

    def count(self, marker: str) -> int:
        return sum(marker in line for line in list(self.lines))

    def wait_for(self, marker: str, n: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.count(marker) < n:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def all(self, marker: str) -> list[str]:
        return [line.split(marker, 1)[1] for line in list(self.lines) if marker in line]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self) -> str:
        return "\n".join([line for line in self.lines if "underrun" not in line][-30:])


def load_clips(clips_dir: Path = CLIPS_DIR) -> list[tuple[np.ndarray, str, float]]:
    """The interruption recordings: (samples, text, onset seconds)."""
    import soundfile as sf

    manifest = json.loads((clips_dir / "manifest.json").read_text(encoding="utf-8"))
    out = []
    for clip in manifest["clips"]:
        audio, rate = sf.read(clips_dir / clip["file"], dtype="float32")
        if rate != RATE:
            raise ValueError(f"{clip['file']}: expected {RATE} Hz, got {rate}")
        out.append((audio, clip["text"], float(clip["onset_s"])))
    return out


def write_config(root: Path, pause_ms: int | None = None) -> tuple[Path, Path]:
    (root / "personas").mkdir(parents=True, exist_ok=True)
    (root / "personas" / "tester.yaml").write_text(PERSONA, encoding="utf-8")
    sock = root / "control.sock"
    config = root / "config.yaml"
    config.write_text(
        f"persona: tester\npersonas_dir: {root / 'personas'}\nstate_dir: {root / 'state'}\nlog_level: debug\n"
        "llm:\n  max_sentences: 1\n  max_reply_tokens: 32\n"
        "audio:\n  echo_cancel: speex\n"
        f"control:\n  socket: {sock}\n" + ("" if pause_ms is None else f"listen:\n  barge_in_pause_ms: {pause_ms}\n"),
        encoding="utf-8",
    )
    return config, sock


def run_barge_in(
    root: Path,
    *,
    gain_db: float,
    replies: int = 20,
    interruptions: int = 5,
    until_heard: int | None = None,
    pause_ms: int | None = None,
    log: Callable[[str], None] = print,
) -> BargeInRun:
    """One session of the daemon in a room with echo at ``gain_db``: ``replies`` lines with nobody
    talking, then up to ``interruptions`` people talking over a long reply (fewer once
    ``until_heard`` of them have stopped the robot and had two or more of their words heard).
    ``pause_ms``: the daemon's ``listen.barge_in_pause_ms`` (default: the config's)."""
    from companion.control.client import ControlClient
    from companion.control.settings import ControlSettings

    root.mkdir(parents=True, exist_ok=True)
    config, sock = write_config(root, pause_ms)
    clips = load_clips()
    result = BargeInRun(gain_db, pause_ms)
    pulse_server = PulseServer(root / "pulse", sinks=("speaker",), pipe_sources=("mic",), default_source="mic")
    with pulse_server as pulse, Room(pulse, gain_db=gain_db) as room:
        daemon = _Daemon(
            [sys.executable, "-m", "companion", "run", "--config", str(config)], dict(pulse.env), root / "daemon.log"
        )
        try:
            if not daemon.wait_for(SAID, 1, 180):  # the greeting: the echo canceller learns the room
                raise RuntimeError(f"the daemon did not start and greet:\n{daemon.tail()}")
            client = ControlClient(ControlSettings(socket=sock), read_timeout=30)
            for i in range(replies):
                said = daemon.count(SAID)  # a false barge-in cuts a reply short, and may add an answer
                client.play(LINES[i % len(LINES)])
                if not daemon.wait_for(SAID, said + 1, 30):
                    raise RuntimeError(f"reply {i + 1} was never finished:\n{daemon.tail()}")
            result.replies = replies + 1
            result.false_barge_ins = daemon.count(BARGE_IN)
            result.echo = dict(client.status().get("echo", {}))
            log(f"  echo {gain_db:+.0f} dB: {result.replies} replies, {result.false_barge_ins} false barge-ins")
            for n in range(interruptions):
                audio, text, onset_s = clips[n % len(clips)]
                before = daemon.count(BARGE_IN)
                heard_before = daemon.count(": heard: ")
                client.play(LONG)
                deadline = time.monotonic() + 20
                while room.speaking_since() < 1.2 and time.monotonic() < deadline:
                    time.sleep(0.02)
                if daemon.count(BARGE_IN) > before:  # it stopped before the person said a word
                    result.false_barge_ins += 1
                    log(f"  interruption {n + 1}: the robot stopped before the person spoke (a false barge-in)")
                    before = daemon.count(BARGE_IN)
                start = room.say(audio)
                onset, until = start + int(onset_s * RATE), start + len(audio)
                noticed = daemon.wait_for(BARGE_IN, before + 1, 5)
                logged = room.now  # the robot fades out right after it logs the barge-in
                if not noticed:
                    result.missed += 1
                    log(f"  interruption {n + 1}: not noticed")
                # what was heard: every turn that began while the person spoke (a pause
                # after "Wait, stop." may end a turn there, and the rest is the next one)
                deadline = time.monotonic() + 20
                while room.now < max(until + RATE // 2, logged + RATE // 2) and time.monotonic() < deadline:
                    time.sleep(0.05)
                # stopped: quiet from then until well after it said so (its answer to the
                # interruption, which may come while the person still talks, is a new reply)
                stop = room.quiet_from(onset, logged + int(0.4 * RATE)) if noticed else None
                reaction = "-" if stop is None else f"{(stop - onset) * 1000.0 / RATE:.0f} ms"
                if stop is not None:
                    result.reactions_ms.append((stop - onset) * 1000.0 / RATE)
                heard = ""
                if daemon.wait_for(": heard: ", heard_before + 1, 20):
                    while room.now < until + 6 * RATE and time.monotonic() < deadline:
                        time.sleep(0.05)  # the rest of it, if a pause ended a turn early
                    heard = " ".join(daemon.all(": heard: ")[heard_before:])
                    result.heard.append(heard)
                    result.wers.append(wer(text, heard))
                    result.words_right.append(words_right(text, heard))
                    result.understood += stop is not None and result.words_right[-1] >= 2
                said = daemon.count(SAID)
                daemon.wait_for(SAID, said + 1, 30)  # its answer to the interruption
                time.sleep(0.5)
                log(f"  interruption {n + 1}: reaction {reaction}, heard {heard!r}")
                if until_heard is not None and result.understood >= until_heard:
                    break
        finally:
            result.refused = daemon.count(REFUSED)
            result.stutters = daemon.count(WENT_ON)
            daemon.stop()
            speaker, mic = room.recordings()
            write_wav(root / "room-speaker.wav", speaker, RATE)
            write_wav(root / "room-mic.wav", mic, RATE)
    return result


def report(runs: list[BargeInRun]) -> list[str]:
    lines = ["barge-in (echo path: ~40 ms + pipes, reverberation RT60 0.25 s; times are upper bounds)"]
    for run in runs:
        s = run.summary()
        echo = run.echo
        lines.append(
            f"  echo {run.gain_db:+.0f} dB{'' if run.pause_ms is None else f', pause at {run.pause_ms} ms'}: "
            f"reaction median {s['reaction_median_ms']} ms, "
            f"p95 {s['reaction_p95_ms']} ms "
            f"over {len(run.reactions_ms)} (missed {run.missed}; understood {run.understood}); WER {s['wer_mean']}; "
            f"false barge-ins {run.false_barge_ins}/{run.replies} replies "
            f"({run.refused} more caught as echo); paused and went on {run.stutters} times; "
            f"ERLE {echo.get('erle_db')} dB; AEC {echo.get('cost_ms_per_10ms_frame')} ms per 10 ms frame"
        )
    return lines
