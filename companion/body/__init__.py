"""The robot's body: speaker amplifier, LED eyes and buttons on GPIO.

The parts live in submodules (``core`` has :class:`~companion.body.core.Body` and
:func:`~companion.body.core.open_body`); this package module stays import-free so
that ``companion.config`` can import the settings without loading the body.
"""
