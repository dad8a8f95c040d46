"""`companion run --input` says what the response times it prints mean."""

from __future__ import annotations

from pathlib import Path

from companion.cli.run import pacing_note


def test_a_paced_run_says_its_times_are_what_a_user_gets() -> None:
    note = pacing_note(Path("tests/fixtures/demo.wav"), 21.04, fast=False)
    assert note.startswith("demo.wav: 21.0 s played in real time") and "as a user would hear it" in note


def test_a_fast_run_says_its_times_include_the_transcription() -> None:
    note = pacing_note(Path("demo.wav"), 21.0, fast=True)
    assert "not paced (--fast)" in note and "transcription" in note and "real time" not in note
