"""Several steps in one round trip: scripts that ran back to back on a host, one channel
each, run as one script, the exit code telling the executor which of them failed.

At 50 ms of round-trip time every channel costs about two round trips (open, then exec
and its output), so the steps that always follow each other on one host (switch, log,
cleanup, unlock) are sent together. Each part runs in a subshell, so an ``exit`` in one
ends that part only and the next part is reached only when the one before succeeded.
A part is never the left side of ``||``: there a shell ignores the part's own ``set -e``.
"""

from __future__ import annotations

from ..shell import quote
from .codes import EXIT_AFTER_SWITCH, EXIT_AFTER_UPLOAD, EXIT_CLEANUP_FAILED

THEN = "# --- then ---"  # between the parts (tests/fast/story.py labels each part)


def _part(script: str, code: str = "$rc") -> str:
    """Run ``script`` in a subshell (its ``set -e`` in force); if it fails, exit ``code``."""
    return f"(\n{script}\n)\nrc=$?; [ $rc -eq 0 ] || exit {code}"


def after_switch(switch: str, then: str) -> str:
    """The switch, then (only if it succeeded) ``then``. A failed switch exits with its own
    code, having run nothing else; a failure of ``then`` exits EXIT_AFTER_SWITCH, so the
    executor knows ``current`` did switch (EXIT_CLEANUP_FAILED from :func:`finish` passes
    through: everything else was done)."""
    code = f'"$( [ $rc -eq {EXIT_CLEANUP_FAILED} ] && echo $rc || echo {EXIT_AFTER_SWITCH} )"'
    return f"{_part(switch)}\n{THEN}\n{_part(then, code)}"


def then_unlock(script: str, unlock: str) -> str:
    """``script``, then (only if it succeeded) the release of the lock: a failed step
    leaves the lock held, for the caller's usual way out to release."""
    return f"{_part(script)}\n{THEN}\n{unlock}"


def upload_then(upload: str, then: str, files: str, size: int) -> str:
    """Read ``size`` bytes of per-release files (a small tar) from stdin into the file
    ``files``, then run ``upload`` (which reads the rest of stdin: the artifact), then, only
    if it succeeded, ``then`` (which unpacks ``files``): upload and prepare in one round
    trip. ``head -c`` (GNU) reads no byte past ``size``, and the size is checked. A failed
    upload exits with its own code; a failure of ``then`` exits EXIT_AFTER_UPLOAD. The file
    is removed on every way out."""
    return "\n".join(
        [
            f"files={quote(files)}",
            """trap 'rm -f -- "$files"' EXIT""",
            f'(umask 077 && head -c {int(size)} > "$files")',
            f'[ "$(wc -c < "$files")" -eq {int(size)} ] || {{ echo "short upload" >&2; exit 1; }}',
            _part(upload),
            THEN,
            _part(then, str(EXIT_AFTER_UPLOAD)),
        ]
    )


def finish(log: str, cleanup: str | None, unlock: str) -> str:
    """The last steps of a deploy on one host: the log (if it fails, nothing else runs and
    the lock stays, for the caller's usual way out), the removal of old releases (its
    failure only warns, as a cleanup's does: the unlock still runs, and the script exits
    EXIT_CLEANUP_FAILED), the unlock."""
    parts = [_part(log)]
    if cleanup:
        parts += [THEN, f"(\n{cleanup}\n)\ncleaned=$?"]
    parts += [THEN, unlock]
    if cleanup:
        parts.append(f"[ $cleaned -eq 0 ] || exit {EXIT_CLEANUP_FAILED}")
    return "\n".join(parts)


def then_also(script: str, more: str) -> str:
    """Two fail-fast scripts as one (``more`` runs only if ``script`` succeeded)."""
    return f"{script}\n{THEN}\n{more}"
