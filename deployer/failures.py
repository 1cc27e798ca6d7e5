"""How per-host outcomes become one domain error.

Steps run on many hosts at once and come back as :class:`~deployer.runner.Outcome`
values. A task reports every host, then raises one error for all the failures: the first
failure keeps its own kind (an unreachable host stays exit 4, a held lock exit 3) and the
message names every other host that failed too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .errors import DeployerError, DeployFailed
from .runner import Outcome
from .transport import Result, Session


def checked(
    session: Session, script: str, what: str, stdin: bytes | None = None, read_only: bool = False
) -> Result:
    """Run a script; a non-zero exit becomes DeployFailed naming host, step and output."""
    result = session.run(script, stdin, read_only=read_only)
    if not result.ok:
        raise DeployFailed(f"host {session.host.name}: {what} failed: {result.output_tail()}")
    return result


def failed(outcomes: Sequence[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.ok]


def raise_failures(outcomes: Sequence[Outcome], default: type[DeployerError] = DeployFailed) -> None:
    """Raise for the failed outcomes, if any: the first one's error (its kind kept), naming
    how many other hosts failed and which. Errors that are not ours become ``default``."""
    bad = failed(outcomes)
    if not bad:
        return
    first = bad[0]
    others = ""
    if len(bad) > 1:
        others = f" (and {len(bad) - 1} more host(s): {', '.join(o.name for o in bad[1:])})"
    if isinstance(first.error, DeployerError):
        raise type(first.error)(first.error.message + others)
    raise default(f"host {first.name}: {first.reason()}{others}")


def raise_on_failure(
    outcomes: Sequence[Outcome[Result]],
    kind: type[DeployerError],
    explain: Callable[[Outcome[Result]], str],
) -> None:
    """For steps whose command may exit non-zero (hooks, health checks): in host order, a
    host that could not run it raises its own error; a command that failed raises
    ``kind(explain(outcome))``."""
    for outcome in outcomes:
        if not outcome.ok:
            raise_failures(outcomes, kind)  # this is the first failed outcome
        if not outcome.value.ok:
            raise kind(explain(outcome))
