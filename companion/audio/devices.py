"""Finding sound devices by index or name (through PortAudio/sounddevice)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

from companion.errors import NoAudioDeviceError

_log = logging.getLogger(__name__)
Kind = Literal["input", "output"]

NO_INPUT_HELP = (
    "set audio.input_device in config.yaml (see 'companion devices'), "
    "or run on a recording: companion run --input REC.wav --output-dir DIR"
)
NO_OUTPUT_HELP = (
    "set audio.output_device in config.yaml (see 'companion devices'), "
    "or write replies to files: companion run --input REC.wav --output-dir DIR"
)


@dataclass(frozen=True)
class DeviceInfo:
    index: int
    name: str
    inputs: int
    outputs: int
    default_rate: float
    is_default_input: bool
    is_default_output: bool


PULSE_LATENCY_MSEC = "60"
"""Buffering asked of PulseAudio/PipeWire by clients that go through ALSA's pulse plugin
(unless the user set it): their default of ~2 s made playback underrun with small callbacks
and put the robot's echo far from where the echo canceller looks for it."""


def _sd() -> Any:
    os.environ.setdefault("PULSE_LATENCY_MSEC", PULSE_LATENCY_MSEC)
    try:
        import sounddevice
    except OSError as exc:  # PortAudio library missing
        raise NoAudioDeviceError(
            f"PortAudio is not installed ({exc}); install it with: sudo apt-get install libportaudio2"
        ) from None
    return sounddevice


def list_devices() -> list[DeviceInfo]:
    sd = _sd()
    try:
        devices = sd.query_devices()
        default_in, default_out = sd.default.device
    except sd.PortAudioError as exc:
        raise NoAudioDeviceError(f"cannot list sound devices: {exc}") from None
    out = []
    for i, d in enumerate(devices):
        out.append(
            DeviceInfo(
                index=i,
                name=str(d["name"]),
                inputs=int(d["max_input_channels"]),
                outputs=int(d["max_output_channels"]),
                default_rate=float(d["default_samplerate"]),
                is_default_input=i == default_in,
                is_default_output=i == default_out,
            )
        )
    return out


def resolve_device(spec: int | str | None, kind: Kind) -> DeviceInfo:
    """The device for ``spec`` (index, name substring, or None for the default)."""
    devices = list_devices()
    channels = (lambda d: d.inputs) if kind == "input" else (lambda d: d.outputs)
    usable = [d for d in devices if channels(d) > 0]
    help_text = NO_INPUT_HELP if kind == "input" else NO_OUTPUT_HELP
    if not usable:
        raise NoAudioDeviceError(f"no audio {kind} device found; {help_text}")
    if spec is None:
        for d in usable:
            if d.is_default_input if kind == "input" else d.is_default_output:
                return d
        return usable[0]
    if isinstance(spec, int):
        for d in usable:
            if d.index == spec:
                return d
        raise NoAudioDeviceError(f"audio {kind} device {spec} does not exist or has no {kind}s; {help_text}")
    matches = [d for d in usable if spec.lower() in d.name.lower()]
    if not matches:
        names = ", ".join(repr(d.name) for d in usable)
        raise NoAudioDeviceError(f"no audio {kind} device named like {spec!r} (have: {names}); {help_text}")
    return matches[0]
