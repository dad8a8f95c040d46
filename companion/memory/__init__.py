"""Grounding and memory: the robot knows who it is and remembers who you are.

- :mod:`.intents` / :mod:`.answers`: fact questions answered from the persona's facts;
- :mod:`.extract` / :mod:`.store`: what the user says about themselves, kept in SQLite;
- :mod:`.prompt`: facts and memory in the system prompt, within a token budget;
- :mod:`.check`: model sentences that contradict the facts are replaced;
- :mod:`.grounded`: :class:`GroundedChat`, a Chat wrapper doing all of the above.

Nothing here imports a model: it wraps whatever Chat it is given.
Import the submodules themselves: ``companion.config`` imports :mod:`.settings`, so this
package's ``__init__`` stays empty to keep that import light.
"""
