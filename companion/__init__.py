"""companion: an offline voice-loop daemon that gives a small robot a character's voice."""

__version__ = "0.1.0"
