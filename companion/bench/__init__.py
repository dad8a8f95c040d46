"""``companion bench``: how fast the robot answers, measured through the real loop.

- :mod:`companion.bench.session`: recorded turns spoken into the loop like a microphone
- :mod:`companion.bench.runner`: the daemon over those turns; per-turn timings
- :mod:`companion.bench.coldstart`: a fresh ``companion run`` to listening; its peak RSS
- :mod:`companion.bench.report`: median/p95, JSON, the printed report
- :mod:`companion.bench.plot`: the per-turn stacked bar chart (optional matplotlib)
- :mod:`companion.bench.machine`: the machine and its load during the run

Response latency = first reply sample at the audio device - the TRUE end of the
user's speech (from the fixtures' manifest), not the detector's own estimate.
"""
