"""Speech-to-text on the recorded fixtures, with the real bundled model."""

from __future__ import annotations

from fixtures.fixtures import fixture_path, load_manifest, normalise, wer

from companion.audio.io import load_for_stt, to_float32

WER_BOUND = 0.15
"""Upper bound on the word error rate of tiny.en over all single utterances."""


def test_word_error_rate_on_the_utterances_is_under_the_bound(stt):
    files = load_manifest()["files"]
    refs, hyps = [], []
    for name, info in sorted(files.items()):
        if info["kind"] != "utterance":
            continue
        refs.append(info["text"])
        hyps.append(stt.transcribe(to_float32(load_for_stt(fixture_path(name)))))
    assert len(refs) >= 8
    rate = wer(" ".join(refs), " ".join(hyps))
    assert rate < WER_BOUND, list(zip(refs, hyps, strict=True))


def test_a_stereo_44k_recording_is_converted_and_understood(stt):
    text = stt.transcribe(to_float32(load_for_stt(fixture_path("stereo_44k.wav"))))
    assert normalise(text) == normalise(load_manifest()["files"]["stereo_44k.wav"]["text"])


def test_silence_transcribes_to_nothing(stt):
    import numpy as np

    assert stt.transcribe(np.zeros(16000, dtype=np.float32)) == ""


def test_a_stream_fed_at_48k_while_the_user_speaks_gives_the_same_transcript(stt):
    import numpy as np
    import soxr

    name = "utt_05.wav"
    audio16 = load_for_stt(fixture_path(name))
    audio48 = (soxr.resample(audio16.astype(np.float32) / 32768.0, 16000, 48000) * 32767).astype(np.int16)
    stream = stt.open_stream(48000)
    for i in range(0, len(audio48), 1440):  # 30 ms microphone blocks
        stream.feed(audio48[i : i + 1440])
    assert normalise(stream.finish()) == normalise(load_manifest()["files"][name]["text"])


def test_a_cancelled_stream_keeps_no_audio(stt):
    import numpy as np

    stream = stt.open_stream(16000)
    stream.cancel()
    stream.feed(np.ones(16000, dtype=np.int16))
    assert stream.audio.samples().size == 0


def _unseen_turns():
    """Turns in voices the model was never tuned against: the pause fixtures and the interruptions."""
    import json

    import numpy as np
    import soundfile as sf

    root = fixture_path("utt_01.wav").parent / "pauses"
    out = []
    for name, info in json.loads((root / "fixtures.json").read_text())["files"].items():
        audio, rate = sf.read(root / name, dtype="float32")
        assert rate == 16000
        for turn in info.get("turns", []):
            out.append(
                (audio[max(0, int((turn["start_s"] - 0.3) * rate)) : int((turn["end_s"] + 0.2) * rate)], turn["text"])
            )
    clips = root.parent / "bargein"
    for clip in json.loads((clips / "manifest.json").read_text())["clips"]:
        out.append((to_float32(load_for_stt(clips / clip["file"])).astype(np.float32), clip["text"]))
    return out


def test_the_fitted_window_hears_unseen_voices_as_well_as_whispers_own_30_s_window(stt):
    from companion.config import SttSettings
    from companion.stt import FasterWhisperSTT

    assert stt.settings.window == "fit"  # the default
    full = FasterWhisperSTT(SttSettings(window="full"))
    turns = _unseen_turns()
    assert len(turns) >= 25
    fit_wer = [wer(text, stt.transcribe(audio)) for audio, text in turns]
    full_wer = [wer(text, full.transcribe(audio)) for audio, text in turns]
    assert sum(fit_wer) / len(turns) <= sum(full_wer) / len(turns) + 0.02, list(zip(fit_wer, full_wer, strict=True))
    assert max(fit_wer) <= max(max(full_wer), 0.5)


def _turns_cut_like_drafts():
    """Every recorded turn ending 60 ms after its last word, as a draft is taken in a pause."""
    import json

    import soundfile as sf

    root = fixture_path("utt_01.wav").parent
    out = []
    for folder in (root, root / "pauses"):
        for name, info in json.loads((folder / "fixtures.json").read_text())["files"].items():
            if info.get("kind") not in ("session", "utterance") or "source" in info:
                continue
            audio, rate = sf.read(folder / name, dtype="float32")
            for turn in info.get("turns", []):
                out.append(
                    (
                        audio[max(0, int((turn["start_s"] - 0.3) * rate)) : int((turn["end_s"] + 0.06) * rate)],
                        turn["text"],
                    )
                )
    return out


def test_a_draft_cut_just_after_its_last_word_is_heard_in_the_short_window(stt):
    """The short window's rest is silence as Whisper knows it (zeros in the audio, not in the
    log-mel): with log-mel zeros, drafts cut 60 ms after the last word looped ("Can you tell me a
    joke? Can you tell me a joke") and were done again in 15 s (19 of 25 here were trusted,
    3 of 19 live)."""
    from companion.config import SttSettings
    from companion.stt import FasterWhisperSTT

    full = FasterWhisperSTT(SttSettings(window="full"))
    turns = _turns_cut_like_drafts()
    assert len(turns) >= 40
    trusted = sum(stt._worker.call(stt._transcribe_fit, audio) is not None for audio, _ in turns)
    assert trusted >= 0.9 * len(turns), f"{trusted} of {len(turns)}"
    fit_wer = sum(wer(text, stt.transcribe(audio)) for audio, text in turns) / len(turns)
    full_wer = sum(wer(text, full.transcribe(audio)) for audio, text in turns) / len(turns)
    assert fit_wer <= full_wer + 0.02


def test_the_last_words_probability_tells_a_word_heard_right_from_a_guess(stt):
    """What the end-of-turn policy trusts (``HeardText.last_word_p``, see turnend.DoubtfulEnding):
    last words heard right score at or above the bar, most misheard ones below it."""
    from companion.turnend import DOUBTFUL_WORD_P

    right, wrong, unknown = [], [], 0
    turns = _turns_cut_like_drafts()
    for audio, text in turns:
        heard = stt.transcribe(audio)
        if heard.last_word_p is None:  # over 6 s, or redone in the 15 s window (see stt.LOGITS_MAX_STEPS)
            unknown += 1
            continue
        same = normalise(heard).split()[-1:] == normalise(text).split()[-1:]
        (right if same else wrong).append(heard.last_word_p)
    assert unknown <= 0.2 * len(turns), unknown
    assert len(right) >= 30 and len(wrong) >= 3, (len(right), len(wrong))
    assert sum(p >= DOUBTFUL_WORD_P for p in right) >= 0.95 * len(right), sorted(right)[:5]
    assert sum(p < DOUBTFUL_WORD_P for p in wrong) >= 0.5 * len(wrong), sorted(wrong)


def test_the_fitted_window_leaves_a_cough_and_noise_to_the_30_s_window(stt):
    for name in ("cough.wav", "noise_only.wav"):
        assert stt.transcribe(to_float32(load_for_stt(fixture_path(name)))) == "", name


def test_a_decode_cut_by_its_cap_keeps_what_was_said_once_and_distrusts_the_rest():
    from companion.stt import _words_within

    ts, eot = 1000, 999  # token ids: timestamps from 1000 (20 ms each), text below 999

    def at(seconds: float) -> int:
        return ts + round(seconds / 0.02)

    said = [at(0.0), 1, 2, 3, at(2.0)]
    assert _words_within(said, ts, eot, seconds=2.5) == [1, 2, 3]
    assert _words_within([*said, at(2.0), 2, 3], ts, eot, seconds=2.5) == [1, 2, 3]  # a loop, cut by the cap
    assert _words_within([*said, at(2.0), 4, 5], ts, eot, seconds=2.5) is None  # new words, cut: not trusted
    assert _words_within([*said, at(2.0), 4, at(3.5), at(3.5), 6, 7], ts, eot, seconds=2.5) == [1, 2, 3, 4]
    again = [*said, at(2.0), 1, 2, 3, at(2.4)]  # "Hey Rocky. Hey Rocky." for a draft of "Hey Rocky."
    assert _words_within(again, ts, eot, seconds=2.5) == [1, 2, 3]
    assert _words_within([*said, at(2.0), 1, 2, 3, at(4.0)], ts, eot, seconds=2.5) == [1, 2, 3]  # ...past the end
    assert _words_within(again, ts, eot, seconds=2.5, keep_cut=True) == [1, 2, 3, 1, 2, 3]


def test_the_15_s_retry_window_hears_what_the_30_s_window_hears(stt):
    """A distrusted short-window decode is redone in 15 s (a third of the 30 s window's peak
    memory): on unseen voices its words are the 30 s window's, and in 30 s it is that decode."""
    from companion.stt import RETRY_WINDOW_FRAMES

    turns = [(audio, text) for audio, text in _unseen_turns() if len(audio) <= 5 * 16000]
    assert len(turns) >= 20
    retry = [wer(text, stt._transcribe_window(audio, RETRY_WINDOW_FRAMES)) for audio, text in turns]
    full = [wer(text, stt._transcribe_full(audio)) for audio, text in turns]
    assert sum(retry) / len(turns) <= sum(full) / len(turns) + 0.01, list(zip(retry, full, strict=True))
    same = [normalise(stt._transcribe_window(a, 3000)) == normalise(stt._transcribe_full(a)) for a, _ in turns[:8]]
    assert sum(same) >= 7
