"""`companion run` on real sound devices, exactly as on the robot (no --input).

A private PulseAudio server provides the devices: a recorded conversation is played
into the robot's microphone with ``paplay`` and what the robot says is recorded from
its speaker. Checked: one spoken, intelligible reply per turn, and the robot never
answers its own voice (also when its voice leaks back into the microphone).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from fixtures.fixtures import fixture_path, load_manifest, normalise
from pulse import RATE, PulseServer, PulseUnavailable, speech_spans

from companion.audio.io import load_for_stt, to_float32, write_wav

pytestmark = [pytest.mark.audio, pytest.mark.slow]

PERSONA = """\
name: Robot
system_prompt: You are Robot, a cheerful little robot. Always answer in one short sentence.
fallback: Sorry, I missed that.
"""


@dataclass
class Daemon:
    """A `companion run` subprocess; its stderr lines collected as they come."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def start_reading(self) -> None:
        def read() -> None:
            assert self.proc.stderr is not None
            for line in self.proc.stderr:
                self.lines.append(line.rstrip())

        threading.Thread(target=read, name="test-daemon-log", daemon=True).start()

    def count(self, marker: str) -> int:
        return sum(marker in line for line in self.lines)

    def said(self) -> list[str]:
        return [line.split("said: ", 1)[1] for line in self.lines if "companion.loop.play: said: " in line]

    def heard(self) -> list[str]:
        return [line.split("heard: ", 1)[1] for line in self.lines if "companion.loop.think: heard: " in line]

    def wait_for(self, marker: str, n: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.count(marker) < n:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def log(self) -> str:
        return "\n".join(self.lines[-40:])


def write_config(tmp: Path) -> Path:
    (tmp / "personas").mkdir()
    (tmp / "personas" / "tester.yaml").write_text(PERSONA, encoding="utf-8")
    config = tmp / "config.yaml"
    config.write_text(
        f"persona: tester\npersonas_dir: {tmp / 'personas'}\nstate_dir: {tmp / 'state'}\nlog_level: info\n"
        "llm:\n  max_sentences: 1\n  max_reply_tokens: 32\n"
        "control:\n  enabled: false\n",  # no TCP port shared with other daemons on this machine
        encoding="utf-8",
    )
    return config


def start_pulse(root: Path, **kwargs: object) -> PulseServer:
    try:
        return PulseServer(root, **kwargs).start()  # type: ignore[arg-type]
    except PulseUnavailable as exc:
        pytest.skip(f"no PulseAudio here: {exc}")


def cut_turns(name: str, tmp: Path) -> tuple[list[Path], list[dict[str, object]]]:
    """Each turn of a recorded session as its own WAV (with the room's noise around it)."""
    turns = load_manifest()["files"][name]["turns"]
    samples = load_for_stt(fixture_path(name))
    paths = []
    for i, turn in enumerate(turns):
        start, end = int((turn["start_s"] - 0.5) * 16000), int((turn["end_s"] + 0.6) * 16000)
        paths.append(tmp / f"turn-{i + 1}.wav")
        write_wav(paths[-1], to_float32(samples[max(start, 0) : end]), 16000)
    return paths, turns


@dataclass
class Session:
    daemon: Daemon
    speaker: np.ndarray
    mic: np.ndarray
    played: list[tuple[Path, float]]  # each turn said into the mic, and about when (s into the recordings)


def converse(pulse: PulseServer, config: Path, turns: list[Path], tmp: Path) -> Session:
    """Run the daemon on the default devices; say each turn into the mic, waiting for the reply
    like a person would (so a slow, busy machine cannot make the robot talk over the next turn);
    record the speaker and the microphone."""
    speaker = pulse.record("speaker.monitor", tmp / "speaker.raw")
    mic = pulse.record("mic.monitor", tmp / "mic.raw")
    t0, played = time.monotonic(), []
    proc = subprocess.Popen(
        [sys.executable, "-m", "companion", "run", "--config", str(config)],
        env=dict(pulse.env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    daemon = Daemon(proc)
    daemon.start_reading()
    try:
        assert daemon.wait_for("listening on", 1, 120), f"the daemon never started listening:\n{daemon.log()}"
        for n, turn in enumerate(turns, start=1):
            played.append((turn, time.monotonic() - t0))
            pulse.play(turn, sink="mic").wait(30)
            if not daemon.wait_for("companion.loop.play: said: ", n, 60):
                break
            time.sleep(0.8)  # past the echo tail (0.4 s): the robot listens again
        # time for an (unwanted) answer to its own last reply to show up
        time.sleep(2.5)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return Session(daemon, speaker.stop(), mic.stop(), played)


def level_dbfs(samples: np.ndarray) -> float:
    return float(20 * np.log10(np.sqrt(np.mean(np.square(samples, dtype=np.float64))) + 1e-9))


def where_played(session: Session, search_s: float = 2.0) -> list[tuple[float, float]]:
    """Where each turn the test said lies in the microphone recording: found by correlating the
    clip with the recording around when it was started (the recorder itself starts a little late)."""
    spans = []
    for path, about in session.played:
        clip = to_float32(load_for_stt(path)).astype(np.float64)
        lo = max(int((about - search_s) * RATE), 0)
        part = session.mic[lo : lo + len(clip) + int(2 * search_s * RATE)].astype(np.float64)
        if len(part) < len(clip):
            continue
        size = 1 << (len(part) + len(clip)).bit_length()
        corr = np.fft.irfft(np.fft.rfft(part, size) * np.conj(np.fft.rfft(clip, size)), size)
        at = (lo + int(np.argmax(corr[: len(part) - len(clip) + 1]))) / RATE
        spans.append((at, at + len(clip) / RATE))
    return spans


def mic_level_while_speaking(session: Session, margin_s: float = 0.05) -> list[float]:
    """The microphone's level during each stretch of the robot's speech, leaving out the moments
    the test itself was saying a turn into it: the robot may answer while a clip's trailing room
    noise still plays."""
    mine = np.zeros(len(session.mic), dtype=bool)
    for a, b in speech_spans(session.speaker):
        mine[int(a * RATE) : int(b * RATE)] = True
    for a, b in where_played(session):
        mine[max(int((a - margin_s) * RATE), 0) : int((b + margin_s) * RATE)] = False
    levels = []
    for a, b in speech_spans(session.speaker):
        part = session.mic[int(a * RATE) : int(b * RATE)][mine[int(a * RATE) : int(b * RATE)]]
        if len(part) >= RATE // 4:
            levels.append(level_dbfs(part))
    return levels


def check_replies(daemon: Daemon, audio: np.ndarray, turns: list[dict[str, object]], stt: object) -> None:
    said, heard = daemon.said(), daemon.heard()
    assert daemon.proc.returncode == 0, daemon.log()
    assert "Traceback" not in daemon.log(), daemon.log()
    assert len(heard) == len(turns), f"heard {heard} for {len(turns)} turns:\n{daemon.log()}"
    assert len(said) == len(turns), f"said {said} for {len(turns)} turns:\n{daemon.log()}"
    for got, want in zip(heard, turns, strict=True):
        common = set(normalise(got).split()) & set(normalise(str(want["text"])).split())
        assert len(common) >= 2, f"heard {got!r} for {want['text']!r}"

    spans = speech_spans(audio)
    assert len(spans) == len(turns), f"speaker played {len(spans)} stretches of speech {spans}; said {said}"
    for (start, end), text in zip(spans, said, strict=True):
        clip = audio[int(start * RATE) : int(end * RATE)]
        back = normalise(stt.transcribe(clip))  # type: ignore[attr-defined]
        assert len(back.split()) >= 2, f"reply at {start:.1f}-{end:.1f} s transcribes to {back!r}"
        overlap = set(back.split()) & set(normalise(text).split())
        assert overlap, f"the speaker played {back!r} but the robot said {text!r}"


def test_the_robot_answers_each_turn_aloud_on_real_devices(tmp_path, stt):
    config = write_config(tmp_path)
    recordings, turns = cut_turns("session_1.wav", tmp_path)
    pulse = start_pulse(tmp_path / "pulse", sinks=("mic", "speaker"))
    try:
        session = converse(pulse, config, recordings, tmp_path)
    finally:
        pulse.stop()
    check_replies(session.daemon, session.speaker, turns, stt)
    levels = mic_level_while_speaking(session)
    assert levels and max(levels) < -60, f"the robot's voice reached its microphone ({levels} dBFS)"


def test_the_robot_does_not_answer_its_own_voice_leaking_into_the_mic(tmp_path, stt):
    """The speaker's sound is copied into the microphone (an echo path, like a real robot's body)."""
    config = write_config(tmp_path)
    recordings, turns = cut_turns("session_1.wav", tmp_path)
    recordings, turns = recordings[:2], turns[:2]  # two turns show it; keeps the test short
    pulse = start_pulse(tmp_path / "pulse", sinks=("mic", "speaker"), loopbacks=[("speaker.monitor", "mic")])
    try:
        session = converse(pulse, config, recordings, tmp_path)
    finally:
        pulse.stop()
    levels = mic_level_while_speaking(session)
    assert levels and min(levels) > -40, f"the echo path is missing: the mic was at {levels} dBFS while the robot spoke"
    check_replies(session.daemon, session.speaker, turns, stt)


CLOSE_WHILE_PLAYING = """
import threading, time
import numpy as np
from companion.audio.sinks import SpeakerSink
from companion.messages import SpokenAudio

def busy():  # takes the GIL in turns with the stream's callback, as the daemon's stages do
    while True:
        sum(range(10000))

threading.Thread(target=busy, daemon=True).start()
audio = (np.random.default_rng(0).standard_normal(22050) * 0.1).astype(np.float32)
for i, pause in enumerate(np.random.default_rng(1).uniform(0.0, 0.1, 60)):
    sink = SpeakerSink(None, latency="low")
    sink.begin(i)
    sink.write(SpokenAudio(audio, 22050, i, "noise"))
    time.sleep(float(pause))
    sink.close()
    print(i + 1, flush=True)
"""


def test_the_speaker_closes_while_its_stream_is_playing(tmp_path):
    """close() stops a stream whose callback may be waiting for the sink's lock: no deadlock."""
    pulse = start_pulse(tmp_path / "pulse", sinks=("speaker",), default_source="speaker.monitor")
    try:
        child = subprocess.Popen(
            [sys.executable, "-c", CLOSE_WHILE_PLAYING], env=pulse.env, stdout=subprocess.PIPE, text=True
        )
        try:
            out, _ = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            out, _ = child.communicate()
            closed = out.split()[-1] if out.split() else "0"
            raise AssertionError(f"SpeakerSink.close() hangs after {closed} of 60 closes") from None
        assert child.returncode == 0 and out.split()[-1] == "60"
    finally:
        pulse.stop()


PAUSE_AND_GO_ON = """
import json, time
import numpy as np
from companion.audio.sinks import SpeakerSink
from companion.messages import SpokenAudio

class Played:  # sits where the echo reference does: sees every block the speaker plays
    def __init__(self):
        self.blocks, self.rate = [], 0
    def played(self, samples, rate, heard_at):
        self.blocks.append(samples.copy())
        self.rate = rate

played = Played()
sink = SpeakerSink(None, latency="low", reference=played)
sink.begin(1)
sink.write(SpokenAudio(np.zeros(3200, dtype=np.float32), 16000, 1, "silence"))
while sum(len(b) for b in played.blocks) < 6400:  # the sound server takes a while to start pulling
    time.sleep(0.01)
sink.write(SpokenAudio(np.full(16000, 0.25, dtype=np.float32), 16000, 1, "tone"))  # 1 s, a level the gain shows on
time.sleep(0.3)
sink.pause(True, 0.02)
time.sleep(0.6)
sink.pause(False, 0.02)
sink.end(1)
sink.close()
out = np.concatenate(played.blocks)
np.save("played.npy", out)
print(json.dumps({"rate": played.rate}))
"""


def test_a_paused_voice_holds_where_it_is_and_goes_on_without_losing_a_sample(tmp_path):
    """pause(True) ramps the voice down and holds the rest queued; pause(False) plays it on."""
    pulse = start_pulse(tmp_path / "pulse", sinks=("speaker",), default_source="speaker.monitor")
    try:
        child = subprocess.run(
            [sys.executable, "-c", PAUSE_AND_GO_ON],
            env=pulse.env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        pulse.stop()
    assert child.returncode == 0, child.stderr
    rate = json.loads(child.stdout)["rate"]
    out = np.load(tmp_path / "played.npy")
    loud = np.flatnonzero(out > 0.2)
    hold = np.diff(loud).max() / rate
    assert 0.4 < hold < 0.8, f"the voice was held for {hold:.2f} s, not the 0.6 s it was paused"
    # the ramps down and up (20 ms each) are the only samples not at full level; none is dropped
    sound = float(out.sum()) / 0.25 / rate
    assert 0.97 < sound < 1.01, f"{sound:.3f} s of the 1 s voice was played"
