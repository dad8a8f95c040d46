"""`companion say`: flags, text sources, WAV output, speed, errors, and the cold path (real Piper)."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_control_api import LINE, ROCKY_LINE, write_setup

from companion.audio.io import read_audio
from companion.audio.sinks import FileSink
from companion.cli import main
from companion.config import load_config
from companion.control.server import ControlServer
from companion.control.speech import play
from companion.control.tts_backend import TtsBackend
from companion.messages import Float32Array, SpokenAudio
from companion.persona import Persona
from companion.script import prepare
from companion.stages import Synthesizer


@pytest.fixture()
def cfg(tmp_path: Path, isolated_home: Path) -> Path:
    return write_setup(tmp_path)


@pytest.fixture()
def stdin(monkeypatch: pytest.MonkeyPatch):
    def set_to(text: str) -> None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(text))

    set_to("")
    return set_to


def say(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["say", *args])
    out, err = capsys.readouterr()
    return code, out, err


def f0_median(samples: Float32Array, rate: int) -> float:
    """Median pitch of the voiced 40 ms frames (autocorrelation, 70-400 Hz)."""
    frame = int(0.04 * rate)
    lo, hi = rate // 400, rate // 70
    loud = np.sqrt(np.mean(samples**2)) * 0.5
    found = []
    for start in range(0, len(samples) - frame, frame // 2):
        x = samples[start : start + frame].astype(np.float64)
        if np.sqrt(np.mean(x**2)) < loud:
            continue
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[frame - 1 :]
        lag = lo + int(np.argmax(ac[lo:hi]))
        if ac[lag] > 0.5 * ac[0]:
            found.append(rate / lag)
    assert len(found) > 5
    return float(np.median(found))


def test_say_writes_a_wav_prints_the_path_and_the_persona_line(cfg, tmp_path, capsys, stdin):
    out = tmp_path / "hello.wav"
    code, stdout, stderr = say(capsys, "--config", str(cfg), "-o", str(out), LINE)
    assert code == 0, stderr
    assert stdout.strip() == str(out)
    assert f"Rocky: {ROCKY_LINE}" in stderr.splitlines()
    samples, rate = read_audio(out)
    assert rate == 22050 and 1.0 < len(samples) / rate < 5.0


def test_unchanged_text_prints_no_persona_line(cfg, tmp_path, capsys, stdin):
    code, _, stderr = say(capsys, "--config", str(cfg), "--persona", "plain", "-o", str(tmp_path / "p.wav"), LINE)
    assert code == 0 and stderr == ""
    code, _, stderr = say(capsys, "--config", str(cfg), "--raw", "-o", str(tmp_path / "r.wav"), LINE)
    assert code == 0 and stderr == ""


def test_transform_only_prints_the_text_and_makes_no_audio(cfg, tmp_path, capsys, stdin):
    assert say(capsys, "--config", str(cfg), "--transform-only", LINE) == (0, ROCKY_LINE + "\n", "")
    assert say(capsys, "--config", str(cfg), "--transform-only", "--raw", LINE) == (0, LINE + "\n", "")
    assert list(tmp_path.glob("*.wav")) == []


def test_text_comes_from_words_stdin_or_a_file(cfg, tmp_path, capsys, stdin):
    base = ["--config", str(cfg), "--transform-only"]
    assert say(capsys, *base, "Hello,", "how", "are", "you", "doing", "today?")[1] == ROCKY_LINE + "\n"
    stdin(LINE + "\n")
    assert say(capsys, *base)[1] == ROCKY_LINE + "\n"
    text = tmp_path / "line.txt"
    text.write_text("Are you well?\nGood.\n", encoding="utf-8")
    assert say(capsys, *base, "-f", str(text))[1] == "You well, question? Good.\n"
    stdin("Are you ok?")
    assert say(capsys, *base, "-f", "-")[1] == "You ok, question?\n"


def test_no_text_prints_usage_and_exits_2(cfg, capsys, stdin):
    code, out, err = say(capsys, "--config", str(cfg))
    assert code == 2 and out == ""
    assert err.startswith("usage: companion say") and "nothing to say" in err
    stdin("   \n")
    assert say(capsys, "--config", str(cfg))[0] == 2
    code, _, err = say(capsys, "--config", str(cfg), "***", "--", "🙂")
    assert code == 2 and "nothing to say" in err


@pytest.mark.parametrize("speed", ["3", "0.1", "fast", "nan", "-1"])
def test_a_bad_speed_is_one_line_and_exit_2(cfg, capsys, stdin, speed):
    code, out, err = say(capsys, "--config", str(cfg), "-s", speed, "hi")
    assert code == 2 and out == ""
    assert err.splitlines() == [f"companion: --speed: expected a number from 0.5 to 2.0, got {speed!r}"]


def test_text_and_a_file_together_or_a_missing_file_exit_2(cfg, tmp_path, capsys, stdin):
    assert say(capsys, "--config", str(cfg), "-f", str(tmp_path / "x.txt"), "hi")[::2] == (
        2,
        "companion: give the text or -f FILE, not both\n",
    )
    code, _, err = say(capsys, "--config", str(cfg), "-f", str(tmp_path / "missing.txt"))
    assert code == 2 and err == f"companion: {tmp_path / 'missing.txt'}: no such file\n"


def test_a_bad_persona_is_a_one_line_error(cfg, tmp_path, capsys, stdin):
    code, _, err = say(capsys, "--config", str(cfg), "--persona", "nobody", "-o", str(tmp_path / "x.wav"), "hi")
    assert code == 1 and len(err.splitlines()) == 1 and "no persona named 'nobody'" in err


def test_speed_2_roughly_halves_the_length_and_keeps_the_pitch(cfg, tmp_path, capsys, stdin):
    text = "The quick brown fox jumps over the lazy dog, and then it runs far away."
    normal, fast = tmp_path / "normal.wav", tmp_path / "fast.wav"
    assert say(capsys, "--config", str(cfg), "--raw", "-o", str(normal), text)[0] == 0
    assert say(capsys, "--config", str(cfg), "--raw", "-s", "2", "-o", str(fast), text)[0] == 0
    a, rate = read_audio(normal)
    b, _ = read_audio(fast)
    assert 0.4 < len(b) / len(a) < 0.7  # pauses shrink less than words
    assert abs(f0_median(b, rate) / f0_median(a, rate) - 1.0) < 0.12


def test_without_a_speaker_playing_fails_suggesting_o(cfg, capsys, stdin):
    code, out, err = say(capsys, "--config", str(cfg), LINE)
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("companion: cannot play: ") and "-o FILE.wav" in lines[0]


def test_with_no_daemon_say_works_in_process_and_says_so(cfg, tmp_path, capsys, stdin):
    port = load_config(cfg).config.control.port
    code, _, err = say(capsys, "--config", str(cfg), "--verbose", "-o", str(tmp_path / "c.wav"), LINE)
    assert code == 0
    assert f"companion say: no daemon at http://127.0.0.1:{port}" in err and "cold start" in err
    assert "companion say: cold: voice loaded in " in err


def test_with_a_server_running_say_goes_through_it(cfg, tmp_path, capsys, stdin):
    config = load_config(cfg).config
    played = tmp_path / "played"
    backend = TtsBackend(config, "rocky", sink_factory=lambda: FileSink(played))
    with ControlServer(backend, config.control):
        out = tmp_path / "w.wav"
        code, stdout, err = say(capsys, "--config", str(cfg), "--verbose", "-s", "1.5", "-o", str(out), LINE)
        assert code == 0 and stdout.strip() == str(out)
        assert f"Rocky: {ROCKY_LINE}" in err and "companion say: warm: said through http://127.0.0.1:" in err
        assert read_audio(out)[1] == 22050
        code, _, err = say(capsys, "--config", str(cfg), LINE)  # no -o: the server plays it
        assert code == 0 and err == f"Rocky: {ROCKY_LINE}\n"
        code, _, err = say(capsys, "--config", str(cfg), "--persona", "nobody", "-o", str(out), LINE)
        assert code == 1 and "no persona named 'nobody'" in err
    backend.close()  # waits for the queued play
    assert (played / "turn-002.wav").exists()
    code, _, err = say(capsys, "--config", str(cfg), "--verbose", "--no-daemon", "-o", str(out), LINE)
    assert code == 0 and "cold:" in err and "no daemon" not in err


class _Recorder:
    """Seam for ordering: logs when each sentence's synthesis starts and when blocks are played."""

    def __init__(self, inner: Synthesizer) -> None:
        self.inner, self.sample_rate = inner, inner.sample_rate
        self.log: list[tuple[str, object]] = []

    def synthesize(self, text: str, *, speed: float | None = None):
        self.log.append(("synth", text))
        yield from self.inner.synthesize(text, speed=speed)


class _LoggingSink(FileSink):
    def __init__(self, out_dir: Path, log: list[tuple[str, object]]) -> None:
        super().__init__(out_dir)
        self.log = log

    def write(self, audio: SpokenAudio) -> float:
        self.log.append(("play", audio.sentence))
        return super().write(audio)


def test_long_text_starts_playing_after_its_first_sentence(piper, tmp_path):
    persona = Persona(name="Plain", system_prompt="A plain voice.")
    text = " ".join(f"This is sentence number {n} of a long page of text." for n in range(1, 9))
    script = prepare(persona, text)
    assert len(script.spoken) == 8
    synth = _Recorder(piper)
    seconds = play(synth, script.spoken, _LoggingSink(tmp_path, synth.log))
    first_play = synth.log.index(("play", 0))
    last_synth = synth.log.index(("synth", script.spoken[-1]))
    assert first_play < last_synth, synth.log
    assert [i for kind, i in synth.log if kind == "play"] == list(range(8))
    samples, rate = read_audio(tmp_path / "turn-001.wav")
    assert abs(len(samples) / rate - seconds) < 0.01 and seconds > 10


def test_the_warm_path_imports_no_numpy():
    """What `say` needs to reach the daemon stays light (process start is most of a warm call)."""
    code = (
        "import sys, companion.cli.say, companion.config, companion.control.client\n"
        "heavy = sorted(m for m in ('numpy', 'onnxruntime', 'piper', 'soundfile') if m in sys.modules)\n"
        "assert not heavy, heavy"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
