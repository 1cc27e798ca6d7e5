"""Several steps in one round trip: scripts that ran back to back on a host, one channel
each, run as one script, the exit code telling the executor which of them failed.

At 50 ms of round-trip time every channel costs about two round trips (open, then exec
and its output), so the steps that always follow each other on one host (switch, log,
cleanup, unlock) are sent together. Each part runs in a subshell, so an ``exit`` in one
ends that part only and the next part is reached only when the one before succeeded.
"""

from __future__ import annotations

from .codes import EXIT_AFTER_SWITCH

THEN = "# --- then ---"  # between the parts (tests/fast/story.py labels each part)


def after_switch(switch: str, then: str) -> str:
    """The switch, then (only if it succeeded) ``then``. A failed switch exits with its own
    code, having run nothing else; a failure of ``then`` exits EXIT_AFTER_SWITCH, so the
    executor knows ``current`` did switch."""
    return f"( {switch}\n) || exit $?\n{THEN}\n( {then}\n) || exit {EXIT_AFTER_SWITCH}"


def then_unlock(script: str, unlock: str) -> str:
    """``script``, then (only if it succeeded) the release of the lock: a failed step
    leaves the lock held, for the caller's usual way out to release."""
    return f"( {script}\n) || exit $?\n{THEN}\n{unlock}"
