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
