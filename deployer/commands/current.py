"""The ``current`` link: switched atomically, put back, or removed."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import PurePosixPath

from ..layout import TMP_LINK_PREFIX, Layout, current_target
from ..shell import argv, or_fail, quote, script
from .codes import EXIT_NOT_A_RELEASE

OUR_TMP_LINK = re.compile(re.escape(TMP_LINK_PREFIX) + r"[0-9a-f]{1,64}")  # the names switch() makes


def remove_tmp_links(layout: Layout, names: Iterable[str]) -> str:
    """Delete leftover temporary ``current`` links from interrupted switches."""
    paths = [str(PurePosixPath(layout.deploy_to, n)) for n in names if OUR_TMP_LINK.fullmatch(n)]
    return argv("rm", "-f", "--", *paths) if paths else "true"


def cancel_pending_switches(layout: Layout) -> str:
    """Remove every temporary ``current`` link, so that a switch still in flight on this
    host (its run was interrupted while ``mv`` was renaming) finds its link gone and fails,
    instead of landing after ``current`` was put back. Run before putting ``current`` back."""
    return f"rm -f -- {quote(layout.tmp_link(''))}*"


def switch(layout: Layout, number: int, token: str) -> str:
    """Point ``current`` at ``releases/N`` atomically.

    A uniquely named temporary link is renamed over ``current`` (rename(2) via
    ``mv -T``), so a reader sees either the old or the new target, never neither; the
    result is verified with ``readlink``.
    """
    check = or_fail(
        f"[ -d {quote(layout.release(number))} ]", f"release {number} is not on this host", EXIT_NOT_A_RELEASE
    )
    return point_current(layout, current_target(number), token, check)


def point_current(layout: Layout, target: str, token: str, check: str = "") -> str:
    """Atomically point ``current`` at any ``target`` (also one we did not create, when
    putting back a link someone made by hand)."""
    tmp = quote(layout.tmp_link(token))
    return script(
        check,
        f"ln -s {quote(target)} {tmp}",
        f"mv -T {tmp} {quote(layout.current)} || {{ rc=$?; rm -f {tmp}; exit $rc; }}",
        f'[ "$(readlink {quote(layout.current)})" = {quote(target)} ]',
    )


def unswitch(layout: Layout, number: int) -> str:
    """Remove ``current`` if it points at release N (undoing a first-ever switch)."""
    return (
        f'if [ "$(readlink {quote(layout.current)})" = {quote(current_target(number))} ]; '
        f"then rm -f {quote(layout.current)}; fi"
    )
