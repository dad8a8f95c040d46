"""The daemon's settings: frozen dataclasses loaded from ``config.yaml``.

Each default lives here, once. The repo's ``config.yaml`` documents every key and is
checked against these defaults by the tests.

Search order for the file: ``--config FILE``, then ``~/.config/companion/config.yaml``,
then ``/etc/companion/config.yaml``, then the ``config.yaml`` shipped with companion.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from companion.body.settings import GpioSettings
from companion.control.settings import ControlSettings
from companion.memory.settings import MemorySettings
from companion.settings import between, build, non_negative, one_of, positive, read_yaml, setting

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
REPO_CONFIG = REPO_DIR / "config.yaml"
"""The documented default config; its values equal the dataclass defaults (tested)."""

Device = int | str | None
"""A sound device: its index, part of its name, or null for the system default."""


@dataclass(frozen=True)
class AudioSettings:
    input_device: Device = setting(None, doc="microphone: index or name substring; null = default")
    output_device: Device = setting(None, doc="speaker: index or name substring; null = default")
    output_rate: int | None = setting(None, check=positive, doc="speaker sample rate; null = the voice's own rate")
    block_ms: int = setting(30, check=one_of(10, 20, 30), doc="microphone block length (ms)")
    output_latency: Literal["low", "high"] = setting("low", doc="PortAudio latency hint for playback")
    echo_cancel: Literal["speex", "external", "off"] = setting(
        "off", doc="speex (in-process, libspeexdsp), external (the OS does it) or off (half-duplex)"
    )
    echo_filter_ms: int = setting(250, check=between(20, 1000), doc="speex: longest echo path it models (ms)")


@dataclass(frozen=True)
class VadSettings:
    aggressiveness: int = setting(2, check=between(0, 3), doc="webrtcvad mode, 0 (lenient) to 3")
    frame_ms: int = setting(30, check=one_of(10, 20, 30), doc="webrtcvad frame length")
    pre_roll_ms: int = setting(300, check=non_negative, doc="audio kept before the onset")
    start_ms: int = setting(90, check=positive, doc="voiced audio needed to start a turn")
    end_silence_ms: int = setting(500, check=positive, doc="silence that ends a turn (end_of_turn: silence)")
    end_of_turn: Literal["silence", "syntax", "llm", "syntax+llm"] = setting(
        "syntax+llm", doc="how long a pause must be, from what was said so far (companion/turnend.py)"
    )
    min_end_silence_ms: int = setting(200, check=positive, doc="...after a complete sentence")
    max_end_silence_ms: int = setting(1200, check=positive, doc="...after an unfinished one, at most")
    noise_gate_db: float = setting(6.0, check=between(0, 40), doc="speech must stand this far above the room; 0 = off")
    min_utterance_ms: int = setting(300, check=non_negative, doc="shorter voiced turns are noise")
    max_utterance_s: float = setting(15.0, check=positive, doc="longer turns are cut here")


@dataclass(frozen=True)
class ListenSettings:
    mode: Literal["always", "wake"] = setting("always", doc="answer every turn, or only wake turns")
    wake_phrases: tuple[str, ...] = setting((), doc="extra wake phrases besides the persona's own")
    ignore_while_speaking: bool = setting(True, doc="drop the mic while the robot talks")
    echo_tail_ms: int = setting(400, check=non_negative, doc="...and for this long after")
    barge_in: bool | None = setting(None, doc="talking over the robot interrupts it; null = on unless echo_cancel: off")
    barge_in_ms: int = setting(250, check=between(60, 2000), doc="voiced audio that counts as an interruption (ms)")
    barge_in_pause_ms: int = setting(
        120,
        check=between(0, 2000),
        doc="voiced audio over the robot that pauses its voice until it is known to be an interruption "
        "(it carries on if not); 0 or >= barge_in_ms: off",
    )
    resume: bool = setting(
        True, doc="the user talking again before the reply is heard holds it; a turn drops it (not finished)"
    )


@dataclass(frozen=True)
class SttSettings:
    engine: Literal["local", "wyoming"] = setting("local", doc="local (faster-whisper here) or wyoming (a server)")
    uri: str | None = setting(None, doc="wyoming: the server, tcp://HOST:PORT (e.g. wyoming-faster-whisper)")
    connect_timeout_s: float = setting(0.5, check=positive, doc="remote: give up connecting after this")
    deadline_s: float = setting(3.0, check=positive, doc="remote: transcript due this long after the turn ends")
    fallback: bool = setting(True, doc="remote: keep the local model loaded as fallback (costs ~150 MB RSS)")
    model: str = setting("default", doc="'default' (bundled tiny.en), a model name, or a directory")
    language: str | None = setting("en", doc="spoken language; null = detect")
    compute_type: str = setting("int8", doc="CTranslate2 compute type")
    threads: int = setting(2, check=positive, doc="CPU threads")
    beam_size: int = setting(1, check=positive, doc="1 = greedy (fastest)")
    window: Literal["fit", "full"] = setting(
        "fit", doc="fit: Whisper's encoder reads only the turn (+1 s), ~4x faster; full: its 30 s window"
    )


@dataclass(frozen=True)
class LlmSettings:
    engine: Literal["local", "openai"] = setting("local", doc="local (llama.cpp here) or openai (a chat server)")
    url: str | None = setting(None, doc="openai: the API base, http://HOST:PORT/v1 (llama.cpp server, Ollama)")
    remote_model: str = setting("default", doc="openai: the model name the server knows")
    api_key_env: str = setting("COMPANION_LLM_API_KEY", doc="openai: environment variable with the API key")
    api_key_file: Path | None = setting(None, doc="openai: file holding the API key (instead of the variable)")
    connect_timeout_s: float = setting(0.5, check=positive, doc="remote: give up connecting after this")
    deadline_s: float = setting(4.0, check=positive, doc="remote: first token due within this")
    fallback: bool = setting(True, doc="remote: keep the local model loaded as fallback (costs ~200 MB RSS)")
    model: str = setting("default", doc="'default' (bundled SmolLM2-135M) or a .gguf path")
    context_tokens: int = setting(1536, check=positive, doc="model context window")
    memory_tokens: int = setting(768, check=non_negative, doc="budget for earlier turns")
    max_reply_tokens: int = setting(96, check=positive, doc="reply length cap in tokens")
    max_sentences: int = setting(3, check=positive, doc="reply length cap in sentences")
    threads: int = setting(
        2, check=positive, doc="CPU threads until the voice can start and for end-of-turn probes (1 if the CPU is busy)"
    )
    threads_while_speaking: int = setting(
        1, check=positive, doc="CPU threads for the rest of the reply (leave a core to the TTS)"
    )
    batch: int = setting(256, check=positive, doc="prompt batch size")
    temperature: float = setting(0.6, check=between(0, 2), doc="sampling temperature")
    top_p: float = setting(0.9, check=between(0, 1), doc="nucleus sampling")
    repeat_penalty: float = setting(1.15, check=between(1, 2), doc="repetition penalty")
    no_repeat_tokens: int = setting(
        4, check=non_negative, doc="local model: no run this long of an earlier reply comes again; 0 = off"
    )
    seed: int = setting(1234, doc="sampling seed (fixed = repeatable replies)")


@dataclass(frozen=True)
class TtsSettings:
    engine: str = setting("piper", doc="piper, xtts or wyoming (a server); a persona may choose its own")
    uri: str | None = setting(None, doc="wyoming: the server, tcp://HOST:PORT (voice: the persona's wyoming_voice)")
    connect_timeout_s: float = setting(0.5, check=positive, doc="remote: give up connecting after this")
    deadline_s: float = setting(3.0, check=positive, doc="remote: first audio of a sentence due within this")
    fallback: bool = setting(True, doc="remote: keep the local voice loaded as fallback (Piper: ~145 MB RSS)")
    voice: str = setting("default", doc="piper: 'default' (bundled en_US-joe) or an .onnx path")
    threads: int = setting(1, check=positive, doc="CPU threads for synthesis")
    xtts_model_dir: Path | None = setting(None, doc="xtts: directory with the XTTS v2 files")
    cache_dir: Path | None = setting(None, doc="voice caches; null = the state directory")


@dataclass(frozen=True)
class Config:
    persona: str = setting("default", doc="persona file name (personas/NAME.yaml)")
    personas_dir: Path | None = setting(None, doc="extra persona directory; null = ~/.config/...")
    state_dir: Path | None = setting(None, doc="logs and caches; null = $STATE_DIRECTORY or ~/.local/state")
    log_level: Literal["debug", "info", "warning", "error"] = setting("info")
    clear_memory_on_persona_change: bool = setting(True)
    audio: AudioSettings = field(default_factory=AudioSettings)
    vad: VadSettings = field(default_factory=VadSettings)
    listen: ListenSettings = field(default_factory=ListenSettings)
    stt: SttSettings = field(default_factory=SttSettings)
    llm: LlmSettings = field(default_factory=LlmSettings)
    tts: TtsSettings = field(default_factory=TtsSettings)
    gpio: GpioSettings = field(default_factory=GpioSettings)
    control: ControlSettings = field(default_factory=ControlSettings)
    memory: MemorySettings = field(default_factory=MemorySettings)

    def resolved_state_dir(self) -> Path:
        if self.state_dir is not None:
            return self.state_dir
        env = os.environ.get("STATE_DIRECTORY")  # set by systemd's StateDirectory=
        if env:
            return Path(env.split(":")[0])
        base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(base) / "companion"


def search_path(explicit: Path | None = None) -> list[Path]:
    """The config files looked at, in order; the first that exists wins."""
    if explicit is not None:
        return [explicit]
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path(xdg) / "companion" / "config.yaml", Path("/etc/companion/config.yaml"), REPO_CONFIG]


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    path: Path


def load_config(explicit: Path | None = None) -> LoadedConfig:
    """Load the first config file on the search path (``explicit`` must exist)."""
    for path in search_path(explicit):
        if path == explicit or path.exists():
            return LoadedConfig(build(Config, read_yaml(path), source=str(path)), path)
    return LoadedConfig(Config(), REPO_CONFIG)
