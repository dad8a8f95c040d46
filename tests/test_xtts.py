"""XTTS v2 engine: real Coqui loading, conditioning and streaming, on a tiny random checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from companion.config import TtsSettings
from companion.errors import ModelError, UserError
from companion.tts.voice import VoiceSettings

pytest.importorskip("torch", reason="the xtts extra (torch) is not installed")
pytest.importorskip("TTS", reason="the xtts extra (coqui-tts) is not installed")

pytestmark = pytest.mark.xtts

FIXTURES = Path(__file__).parent / "fixtures"
REFERENCE = FIXTURES / "long_utterance.wav"
MAX_TOKENS = 14
TOKEN_S = 1024 / 22050


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from xtts_tiny import build_tiny_xtts

    return build_tiny_xtts(tmp_path_factory.mktemp("xtts"), max_audio_tokens=MAX_TOKENS)


@pytest.fixture(scope="module")
def model(model_dir: Path):
    from companion.tts.xtts import load_model

    return load_model(model_dir, threads=2)


def test_xtts_persona_streams_24khz_speech_before_the_sentence_is_done(model_dir: Path, tmp_path: Path):
    from companion.tts import build_synthesizer

    tts = TtsSettings(engine="xtts", xtts_model_dir=model_dir, threads=2)
    voice = VoiceSettings(engine="xtts", reference=(REFERENCE,))
    synth = build_synthesizer(tts, voice, tmp_path / "cache")
    synth.stream_chunk_size = 6  # type: ignore[attr-defined]

    chunks = list(synth.synthesize("Hello world, how are you?"))

    assert synth.sample_rate == 24000
    assert len(chunks) >= 2, "audio should arrive in several chunks while the GPT generates"
    audio = np.concatenate(chunks)
    assert audio.dtype == np.float32 and np.isfinite(audio).all()
    seconds = audio.size / synth.sample_rate
    assert 0.25 < seconds < MAX_TOKENS * TOKEN_S + 0.25
    assert float(np.abs(audio).max()) > 0.0
    assert list((tmp_path / "cache" / "xtts").glob("*.pt")), "voice latents should be cached"


def test_voice_latents_are_computed_once_per_clip_set(model, model_dir: Path, tmp_path: Path):
    import torch

    from companion.tts.xtts import conditioning

    latent, speaker = conditioning(model, model_dir, [REFERENCE], tmp_path)
    assert latent.shape[0] == 1 and latent.shape[-1] == 64
    assert speaker.shape == (1, 512, 1)
    (cached,) = (tmp_path / "xtts").glob("*.pt")
    marker = {"gpt_cond_latent": torch.full_like(latent, 7.0), "speaker_embedding": speaker}
    torch.save(marker, cached)

    again, _ = conditioning(model, model_dir, [REFERENCE], tmp_path)
    assert torch.equal(again, marker["gpt_cond_latent"]), "a later start should read the cache"

    other = tmp_path / "other.wav"
    other.write_bytes(REFERENCE.read_bytes()[:-3200])  # different content -> different key
    fresh, _ = conditioning(model, model_dir, [REFERENCE, other], tmp_path)
    assert not torch.equal(fresh, marker["gpt_cond_latent"])
    assert len(list((tmp_path / "xtts").glob("*.pt"))) == 2


def test_speed_shortens_the_speech(model, model_dir: Path, tmp_path: Path):
    from companion.tts.xtts import XttsSynthesizer, conditioning

    latent, speaker = conditioning(model, model_dir, [REFERENCE], tmp_path)
    synth = XttsSynthesizer(model, latent, speaker, stream_chunk_size=0)
    normal = np.concatenate(list(synth.synthesize("Good good good.")))
    fast = np.concatenate(list(synth.synthesize("Good good good.", speed=2.0)))
    assert fast.size < 0.7 * normal.size


def test_missing_model_says_where_to_put_the_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from companion.tts.xtts import resolve_model_dir

    monkeypatch.delenv("COQUI_TOS_AGREED", raising=False)
    where = tmp_path / "xtts_v2"
    with pytest.raises(ModelError) as err:
        resolve_model_dir(where, download=lambda: pytest.fail("must not download without the licence"))
    message = str(err.value)
    assert str(where) in message and "model.pth" in message and "vocab.json" in message
    assert "COQUI_TOS_AGREED" in message


def test_failed_download_is_a_clear_model_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from companion.tts.xtts import resolve_model_dir

    monkeypatch.setenv("COQUI_TOS_AGREED", "1")

    def offline() -> Path:
        raise ConnectionError("no route to host")

    with pytest.raises(ModelError, match="download failed: no route to host"):
        resolve_model_dir(None, download=offline)


def test_xtts_needs_reference_clips(model, model_dir: Path, tmp_path: Path):
    from companion.tts.xtts import conditioning

    with pytest.raises(UserError, match=r"voice\.reference"):
        conditioning(model, model_dir, [], tmp_path)
    with pytest.raises(UserError, match="not found"):
        conditioning(model, model_dir, [tmp_path / "missing.wav"], tmp_path)
