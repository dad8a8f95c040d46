"""WAV headers from hypothesis through the real reader (``read_audio``, ``load_for_stt``).

Any header gives samples or a one-line ``AudioFileError`` naming the file, within
2 s and 200 MB of extra RSS. (What ``transcribe`` and ``run`` say about odd
recordings is in tests/test_recordings.py.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fuzzkit import Meter, one_line, wav_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from companion.audio.io import load_for_stt, read_audio, recording_notes
from companion.errors import AudioFileError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


headers = st.fixed_dictionaries(
    {},
    optional={
        "tag": st.sampled_from([0, 1, 2, 3, 6, 7, 0x11, 0xFFFE, 0xFFFF]) | st.integers(0, 65535),
        "channels": st.sampled_from([0, 1, 2, 8, 33, 255, 65535]) | st.integers(0, 65535),
        "rate": st.sampled_from([0, 1, 100, 3999, 4000, 8000, 44100, 192000, 192001, 2**31 - 1, 2**32 - 1])
        | st.integers(0, 2**32 - 1),
        "bits": st.sampled_from([0, 1, 8, 12, 16, 24, 32, 64, 65535]),
        "data": st.binary(max_size=4000),
        "data_size": st.sampled_from([0, 1, 2**31, 2**32 - 1]) | st.integers(0, 2**32 - 1),
        "riff_size": st.sampled_from([0, 4, 2**32 - 1]) | st.integers(0, 2**32 - 1),
        "block_align": st.integers(0, 65535),
        "extra": st.binary(max_size=40),
    },
)


def check_read(path: Path, meter: Meter, what: object) -> None:
    with meter.measure(what):
        try:
            samples, rate = read_audio(path)
        except AudioFileError as exc:
            one_line(str(exc))
            assert str(path) in str(exc)
            return
        assert samples.dtype == np.float32 and np.isfinite(samples).all()
        assert 4000 <= rate <= 192000
        recording_notes(samples, rate)
        assert len(load_for_stt(path)) >= 0


@settings(max_examples=300)
@given(header=headers)
def test_any_wav_header_reads_or_is_one_line(tmp_path_factory: pytest.TempPathFactory, meter: Meter, header):
    path = tmp_path_factory.mktemp("wav") / "h.wav"
    path.write_bytes(wav_bytes(**header))
    check_read(path, meter, header)


@given(edits=st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=6))
def test_a_real_recording_with_header_bytes_changed(tmp_path_factory: pytest.TempPathFactory, meter: Meter, edits):
    data = bytearray((FIXTURES / "utt_01.wav").read_bytes()[:20000])
    for at, byte in edits:
        data[at % 64] = byte  # the header (and the first samples)
    path = tmp_path_factory.mktemp("wav") / "m.wav"
    path.write_bytes(bytes(data))
    check_read(path, meter, edits)
