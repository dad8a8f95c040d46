"""Borrowing a bigger machine: remote backends for each stage, with the embedded models as fallback.

- :mod:`~companion.remote.wyoming_stt`: speech-to-text on a Wyoming server, streamed while the user speaks;
- :mod:`companion.tts.wyoming`: text-to-speech on a Wyoming server;
- :mod:`~companion.remote.openai_chat`: the LLM on an OpenAI-compatible chat server;
- :mod:`~companion.remote.fallback`: per-stage wrappers (remote first, local when it fails or is late);
- :mod:`~companion.remote.server`: ``companion serve --wyoming``, the persona voices as a Wyoming service;
- :mod:`~companion.remote.peers`: the real servers others wrote, started on loopback (tests, bench).

Nothing here is imported by ``import companion``; ``wyoming`` is imported inside the functions that use it.
"""
