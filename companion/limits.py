"""Every size, depth and time limit on input a user might share or send, in one place.

A persona file, a config file, a reference clip or a recording can come from
someone else; so can a request to the control API from any local process. Each
is bounded here so that no input can exhaust the robot's memory or freeze its
speech. Going over a limit is a one-line error naming the file (or request) and
the limit, never a traceback. The control API's limits that a user may want to
change are settings (``control:`` in config.yaml); their defaults are here.

Files (persona, config: :func:`companion.settings.read_yaml`):

- size :data:`YAML_MAX_BYTES`: "FILE: the file is 2.0 MB; settings files are limited to 512.0 KB"
- nesting :data:`YAML_MAX_DEPTH`: "FILE: line L, column C: nested more than 32 levels deep"
- aliases :data:`YAML_MAX_ALIASES`: "FILE: line L, column C: more than 256 aliases"
- expanded size :data:`YAML_MAX_NODES` values, :data:`YAML_MAX_CHARS` characters
  (billion laughs): "FILE: line L, column C: ... expands to more than 100000 values"
- values quoted in errors are cut to :data:`SHOWN_VALUE_CHARS`; a whole message to
  :data:`ERROR_MAX_CHARS`, always one line; NUL and lone surrogates in strings are refused

Personas (:mod:`companion.persona`, :mod:`companion.saferegex`):

- name :data:`PERSONA_NAME` (files, ``/persona``, ``/say``, ``extends``):
  "bad persona name '../x': use 1-64 letters, digits, '_' or '-'"
- ``extends`` chain :data:`EXTENDS_MAX_CHAIN` files
- regex rules: :data:`REGEX_MAX_CHARS` long; probed at check time (:data:`REGEX_CHECK_S`
  per probe, "too slow ... backtracks catastrophically"); :data:`REGEX_TIMEOUT_S` per
  sentence at run time (then skipped, with one warning)
- reference clips (``voice.reference``, ``voice.match``) :data:`CLIP_MAX_BYTES`

Recordings (``run --input``, ``transcribe``: :func:`companion.audio.io.read_audio`):

- sample rate :data:`MIN_SAMPLE_RATE` to :data:`MAX_SAMPLE_RATE`, at most
  :data:`MAX_CHANNELS` channels, at most :data:`MAX_RECORDING_S` long, no NaN/infinite samples
- too short (:data:`MIN_RECORDING_S`) or silent (:data:`SILENT_DBFS`): "no speech in REC.wav: ...";
  clipped (:data:`CLIPPED_WARN_FRACTION`): a warning

Control API (:mod:`companion.control.server`, :mod:`companion.control.guards`):

- body ``control.max_body_kb``: 413; ``/say`` text ``control.max_text_chars``
  (:data:`MAX_TEXT_CHARS`): 413 "'text' is 9000 characters; the limit is 5000"
- JSON nesting :data:`JSON_MAX_DEPTH`: 400; NUL / lone surrogates in text: 400
- the request must arrive within ``control.request_timeout_s`` (:data:`REQUEST_TIMEOUT_S`),
  with no pause over :data:`IDLE_TIMEOUT_S`: 408
- ``control.max_connections`` (:data:`MAX_CONNECTIONS`) at once: the next get 503 at once
- token: at least :data:`TOKEN_MIN_CHARS` printable ASCII characters; each wrong one waits
  :data:`AUTH_FAIL_DELAY_S` x the failures of the last minute (at most
  :data:`AUTH_FAIL_MAX_DELAY_S`), one at a time
"""

from __future__ import annotations

import re

# ---- YAML settings files (config.yaml, personas) -----------------------------------

YAML_MAX_BYTES = 512 * 1024
"""A persona or config file larger than this is refused before it is parsed (512 KiB; the
shipped ones are 2-4 KB; 512 KiB parses in about 0.2 s here)."""
YAML_MAX_DEPTH = 32
"""Deepest nesting of mappings and lists (the real files need 5)."""
YAML_MAX_ALIASES = 256
"""Most ``*alias`` references in one file."""
YAML_MAX_NODES = 100_000
"""Most values in one file once every alias is expanded (billion-laughs guard)."""
YAML_MAX_CHARS = 4_000_000
"""Most characters of text in one file once every alias is expanded."""
SHOWN_VALUE_CHARS = 60
"""A bad value quoted in an error message is cut to about this many characters."""
ERROR_MAX_CHARS = 400
"""An error message's problem is cut to this many characters (its key to a third of it)."""

# ---- personas ----------------------------------------------------------------------

PERSONA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A persona name is a file name without a path: letters, digits, '_' and '-' (fullmatch)."""
EXTENDS_MAX_CHAIN = 8
"""Most persona files in one ``extends`` chain."""
REGEX_MAX_CHARS = 500
"""Longest regex in a persona's style rules."""
REGEX_CHECK_S = 0.1
"""At check time, each regex rule must finish each probe string within this (seconds)."""
REGEX_TIMEOUT_S = 0.05
"""At run time, one regex rule on one sentence stops after this (seconds) and is skipped."""
CLIP_MAX_BYTES = 50 * 1024 * 1024
"""Largest reference clip a persona may name (``voice.reference``, ``voice.match``)."""

# ---- recordings --------------------------------------------------------------------

MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 192_000
"""Recordings outside these sample rates (Hz) are refused (a header saying 1 Hz would
otherwise be resampled into gigabytes)."""
MAX_CHANNELS = 32
"""Recordings with more channels are refused (a damaged header can claim 65535)."""
MAX_RECORDING_S = 30 * 60
"""Longest recording ``run --input`` and ``transcribe`` read (seconds)."""
CLIPPED_WARN_FRACTION = 0.01
"""More samples than this at full scale: a warning that the recording is clipped."""
SILENT_DBFS = -60.0
"""A recording whose peak is below this is reported as silent."""
MIN_RECORDING_S = 0.1
"""Shorter recordings are reported as too short to hold speech."""

# ---- control API -------------------------------------------------------------------

MAX_TEXT_CHARS = 5000
"""Default of ``control.max_text_chars``: the longest text ``POST /say`` accepts."""
JSON_MAX_DEPTH = 32
"""Deepest JSON nesting in a request body."""
REQUEST_TIMEOUT_S = 10.0
"""Default of ``control.request_timeout_s``: a request (line, headers, body) must arrive within this."""
IDLE_TIMEOUT_S = 5.0
"""A client that sends nothing for this long while sending its request is answered 408."""
MAX_CONNECTIONS = 16
"""Default of ``control.max_connections``: connections served at once; more get a 503 at once."""
TOKEN_MIN_CHARS = 16
"""A control API token must be at least this long (printable ASCII)."""
AUTH_FAIL_DELAY_S = 0.1
AUTH_FAIL_MAX_DELAY_S = 2.0
"""A wrong token is answered after ``AUTH_FAIL_DELAY_S`` x the failures in the last minute
(at most ``AUTH_FAIL_MAX_DELAY_S``), one failure at a time: guessing is slow."""
