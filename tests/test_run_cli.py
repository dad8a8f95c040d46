"""`companion run` end to end on recordings, with the real models, and its error contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures.fixtures import fixture_path, load_manifest, normalise

from companion.audio.io import load_for_stt, read_audio, resample, to_float32

ENV = dict(os.environ)


def companion(*args: str, timeout: float = 240, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "companion", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env or ENV,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("companion: ")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def session_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    out = tmp_path_factory.mktemp("session")
    proc = companion("run", "--input", str(fixture_path("session_2.wav")), "--output-dir", str(out), "--fast")
    return out, proc


def test_a_session_gets_one_reply_per_turn(session_run):
    out, proc = session_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    turns = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    expected = load_manifest()["files"]["session_2.wav"]["turns"]
    assert [t["turn"] for t in turns] == list(range(1, len(expected) + 1))
    for got, want in zip(turns, expected, strict=True):
        assert set(got) >= {"turn", "heard", "reply", "spoken", "audio", "speech_end_s", "timings_ms"}
        assert got["audio"] == f"turn-{got['turn']:03d}.wav"
        assert (out / got["audio"]).exists()
        assert abs(got["speech_end_s"] - want["end_s"]) < 0.3
        assert set(got["timings_ms"]) >= {
            "vad",
            "stt",
            "llm_first_token",
            "first_sentence",
            "tts_first_audio",
            "response",
        }
        assert got["reply"].strip() and got["spoken"].strip()
    # the turns were heard right (loosely: most words)
    heard = normalise(" ".join(t["heard"] for t in turns)).split()
    want_words = normalise(" ".join(t["text"] for t in expected)).split()
    assert len(set(heard) & set(want_words)) >= 0.7 * len(set(want_words))


def test_each_reply_is_intelligible_speech(session_run, stt):
    out, _ = session_run
    turns = [json.loads(line) for line in (out / "transcript.jsonl").read_text().splitlines()]
    for t in turns:
        samples, rate = read_audio(out / t["audio"])
        assert len(samples) / rate > 0.5, "reply audio is (nearly) empty"
        back = normalise(stt.transcribe(resample(samples, rate, 16000)))
        said = set(normalise(t["spoken"]).split())
        assert len(back.split()) >= 2, f"reply {t['audio']} transcribes to {back!r}"
        assert len(set(back.split()) & said) >= max(1, len(said) // 3), (back, t["spoken"])


def test_the_demo_prints_the_conversation(session_run):
    _, proc = session_run
    assert proc.stdout.count("you:") == len(load_manifest()["files"]["session_2.wav"]["turns"])


def test_transcribe_prints_what_was_said():
    proc = companion("transcribe", str(fixture_path("utt_02.wav")))
    assert proc.returncode == 0, proc.stderr
    assert normalise(proc.stdout) == normalise("What is your name?")


def test_a_stereo_44k_input_is_converted(tmp_path):
    proc = companion("run", "--input", str(fixture_path("stereo_44k.wav")), "--output-dir", str(tmp_path), "--fast")
    assert proc.returncode == 0, proc.stderr[-2000:]
    turns = (tmp_path / "transcript.jsonl").read_text().splitlines()
    assert len(turns) == 1
    assert normalise(json.loads(turns[0])["heard"]) == normalise("What is your name?")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing.wav", "no such file"),
        ("not_audio.wav", "not a readable audio file"),
        ("empty.wav", "the file is empty"),
    ],
)
def test_bad_recordings_get_a_one_line_error(tmp_path, name, message):
    path = fixture_path(name) if name != "missing.wav" else tmp_path / name
    proc = companion("run", "--input", str(path), "--output-dir", str(tmp_path / "out"), "--fast", timeout=60)
    line = one_line_error(proc)
    assert str(path) in line and message in line


def test_a_corrupt_config_gets_a_one_line_error(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("vad:\n  aggressivness: 2\n", encoding="utf-8")
    proc = companion(
        "run", "--config", str(cfg), "--input", str(fixture_path("utt_01.wav")), "--output-dir", str(tmp_path)
    )
    line = one_line_error(proc)
    assert line == f"companion: {cfg}: vad.aggressivness: unknown key; did you mean 'aggressiveness'?"


def test_an_unknown_persona_gets_a_one_line_error(tmp_path):
    proc = companion(
        "run", "--persona", "nobody", "--input", str(fixture_path("utt_01.wav")), "--output-dir", str(tmp_path)
    )
    assert "no persona named 'nobody'" in one_line_error(proc)


def test_no_input_device_exits_2_and_says_how_to_pick_one(tmp_path):
    # no sound server to reach, and a microphone name that matches nothing
    env = {**ENV, "PULSE_SERVER": "unix:/nonexistent"}
    cfg = tmp_path / "c.yaml"
    cfg.write_text("audio:\n  input_device: no-such-microphone\n", encoding="utf-8")
    proc = companion("run", "--config", str(cfg), env=env, timeout=60)
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "audio.input_device" in line and "--input" in line


def test_file_mode_replies_do_not_feed_back(tmp_path):
    # one utterance, one reply: the reply written to disk is never heard as input
    proc = companion("run", "--input", str(fixture_path("utt_08.wav")), "--output-dir", str(tmp_path), "--fast")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert len((tmp_path / "transcript.jsonl").read_text().splitlines()) == 1


def test_audio_helpers_reject_nothing_valid():
    assert len(load_for_stt(fixture_path("utt_01.wav"))) > 16000
    assert to_float32(load_for_stt(fixture_path("utt_01.wav"))).dtype.name == "float32"


def test_wake_mode_answers_only_turns_that_start_with_the_wake_phrase(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("listen:\n  mode: wake\n", encoding="utf-8")
    proc = companion(
        "run", "--config", str(cfg), "--persona", "rocky", "--input", str(fixture_path("wake_session.wav")),
        "--output-dir", str(tmp_path / "out"), "--fast",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    turns = [json.loads(line) for line in (tmp_path / "out" / "transcript.jsonl").read_text().splitlines()]
    wanted = [t for t in load_manifest()["files"]["wake_session.wav"]["turns"] if t["wake"]]
    assert [normalise(t["heard"]) for t in turns] == [normalise(t["text"]) for t in wanted]
