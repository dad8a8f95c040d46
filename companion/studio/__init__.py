"""The voice studio: from films and recordings to a character's clean voice.

``companion voice studio`` decodes the media (:mod:`.media`), cuts the speech into
segments (:mod:`.segment`), transcribes them, finds who speaks in each (:mod:`.speakers`)
and flags overlap, music and noise; everything lands in a resumable workspace
(:mod:`.workspace`). ``companion voice review`` serves a local page where a person
decides (:mod:`.review`); ``companion voice export`` writes the reference clip, an
LJSpeech dataset and a persona snippet (:mod:`.export`). Heavy parts (PyAV, torch,
resemblyzer) are imported inside the functions that need them.
"""
