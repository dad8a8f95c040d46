"""The voice loop, as a package: one small module per worker, one owner of shared state."""

from companion.loop.core import VoiceLoop
from companion.loop.drafts import StageTimeout
from companion.loop.options import LoopOptions
from companion.loop.think import stream_with_timeout
from companion.loop.wake import strip_wake_phrase

__all__ = ["LoopOptions", "StageTimeout", "VoiceLoop", "stream_with_timeout", "strip_wake_phrase"]
