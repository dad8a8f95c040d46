"""What Piper is handed: one sentence as one utterance, bounded, only letters it can say."""

from __future__ import annotations

import time

import pytest

from companion.control.backend import ApiError
from companion.control.speech import render
from companion.persona import Persona
from companion.tts.piper import speakable

pytestmark = pytest.mark.slow


def test_a_sentence_with_an_abbreviation_is_spoken_in_one_piece(piper):
    blocks = list(piper.synthesize("Take exit no. 5 now."))
    assert len(blocks) == 1


def test_letters_of_other_scripts_are_left_out_for_an_english_voice():
    assert speakable("Hello 你好 world, café", True) == "Hello    world, café"
    assert speakable("你好", False) == "你好"


def test_text_the_voice_cannot_say_is_refused_at_once(piper):
    t = time.perf_counter()
    with pytest.raises(ApiError, match="no sounds"):
        render(Persona(name="X", system_prompt="x"), piper, "你好世界" * 750)
    assert time.perf_counter() - t < 2.0


def test_a_long_sentence_is_spoken_in_bounded_pieces(piper):
    blocks = list(piper.synthesize(" ".join(["word"] * 300)))
    assert len(blocks) >= 2  # MAX_PHONEMES per model call
