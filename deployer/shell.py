"""The one place where argv becomes shell text.

Every value that reaches a remote shell passes through :func:`quote` (via :func:`argv`),
so builders never hand-quote. Scripts are joined from already-quoted pieces.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable


def quote(value: object) -> str:
    """Quote one value for a POSIX shell."""
    return shlex.quote(str(value))


def argv(*parts: object) -> str:
    """Render one command from its arguments, each quoted."""
    return " ".join(quote(p) for p in parts)


def lines(commands: Iterable[str]) -> str:
    """Join commands as a script, one per line (use with ``set -e`` for fail-fast)."""
    return "\n".join(c for c in commands if c)


def script(*commands: str) -> str:
    """A fail-fast script: stops at the first failing command with its exit code."""
    return lines(("set -e", *commands))


def env_prefix(env: dict[str, str]) -> str:
    """``export`` statements for an environment, values quoted."""
    return lines(f"export {name}={quote(value)}" for name, value in env.items())


def or_fail(test: str, message: str, code: int) -> str:
    """``test``, or print ``message`` on stderr and exit ``code`` (a named exit code the
    deploying machine branches on)."""
    return f"{test} || {{ echo {quote(message)} >&2; exit {int(code)}; }}"


def tar_into(directory: str, args: str) -> str:
    """``tar args`` run inside ``directory``. Never ``tar -C``: GNU tar unquotes that
    argument (a ``\\1`` in the path becomes byte 1), so a deploy_to holding a backslash
    would send the files to another directory, or nowhere."""
    return f"(cd -- {quote(directory)} && tar {args})"
