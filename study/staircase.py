"""Adaptive staircase on exposure time (ms), run on the server; pure functions on a JSON state.

The rule, the reversals and the threshold are defined once, in `analysis.staircase`, which the
analysis also uses to rebuild each participant's staircase from an export; this module is the
server's name for them. The state lives in `Participant.staircase` so that any worker can serve
the next trial (the app is stateless). `cfg` is the study's `StaircaseSettings`.
"""

from __future__ import annotations

from analysis.staircase import initial_state, threshold, update

__all__ = ["initial_state", "threshold", "update"]
