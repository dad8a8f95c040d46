"""Build a tiny, randomly initialised XTTS v2 checkpoint that loads through Coqui's real loader.

The files have the layout of the real model (config.json, model.pth as ``{"model": state_dict}``,
vocab.json from a BPE tokenizer trained with ``tokenizers``) so ``Xtts.load_checkpoint``,
conditioning and ``inference_stream`` run exactly as with the 1.8 GB weights. The GPT is two
layers wide 64; the HiFi-GAN decoder and speaker encoder keep XTTS's real sizes (their shapes
are fixed in Coqui). Random weights never emit the stop token, so every sentence runs to
``max_audio_tokens`` (each token is 1024 samples at 22.05 kHz).

    python tests/xtts_tiny.py DIR      # write a model there
"""

from __future__ import annotations

import sys
from pathlib import Path

SPECIAL_TOKENS = ["[STOP]", "[UNK]", "[SPACE]", "[START]", "[en]"]
_CORPUS = (
    "hello world, how are you today? the quick brown fox jumps over the lazy dog. "
    "a small robot speaks with a borrowed voice! good good good. question? "
    "zebras quietly vex jumping kids. 0123456789"
)


def build_tiny_xtts(model_dir: Path, *, max_audio_tokens: int = 14, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from TTS.tts.configs.xtts_config import XttsArgs, XttsConfig
    from TTS.tts.layers.xtts.tokenizer import VoiceBpeTokenizer
    from TTS.tts.models.xtts import Xtts

    model_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=160, special_tokens=SPECIAL_TOKENS)
    tokenizer.train_from_iterator([_CORPUS, _CORPUS.upper()] * 4, trainer)
    tokenizer.save(str(model_dir / "vocab.json"))

    args = XttsArgs(
        gpt_layers=2,
        gpt_n_model_channels=64,
        gpt_n_heads=2,
        decoder_input_dim=64,
        gpt_num_audio_tokens=130,
        gpt_start_audio_token=128,
        gpt_stop_audio_token=129,
        gpt_max_audio_tokens=max_audio_tokens,
        gpt_max_text_tokens=200,
        gpt_use_perceiver_resampler=True,
    )
    config = XttsConfig(model_args=args, gpt_cond_len=3, gpt_cond_chunk_len=3, max_ref_len=6)
    torch.manual_seed(seed)
    model = Xtts(config)
    model.tokenizer = VoiceBpeTokenizer(str(model_dir / "vocab.json"))
    model.init_models()
    torch.save({"model": model.state_dict()}, model_dir / "model.pth")
    config.save_json(str(model_dir / "config.json"))
    return model_dir


if __name__ == "__main__":
    print(build_tiny_xtts(Path(sys.argv[1])))
