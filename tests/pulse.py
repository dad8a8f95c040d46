"""The private PulseAudio server for tests (it lives in the package: ``companion bench`` uses it too)."""

from companion.bench.pulse import INSTALL_HINT, RATE, PulseServer, PulseUnavailable, Recording, speech_spans

__all__ = ["INSTALL_HINT", "RATE", "PulseServer", "PulseUnavailable", "Recording", "speech_spans"]
