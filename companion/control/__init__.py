"""The daemon's local control API (used by ``companion say`` and ``companion persona use``)."""
