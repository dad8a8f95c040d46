"""Errors a user can act on: printed as one line, no traceback."""

from __future__ import annotations


class UserError(Exception):
    """Something the user can fix; ``str()`` says what and how."""

    exit_code = 1

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class AudioFileError(UserError):
    """A recording could not be read."""


class NoAudioDeviceError(UserError):
    """No usable microphone or speaker."""

    exit_code = 2


class ModelError(UserError):
    """A model could not be found or loaded."""
