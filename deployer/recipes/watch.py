"""The watch window: after the last batch is healthy, keep the lock and check every host
every ``interval`` for ``duration`` (``rollout.watch``).

The release is live and logged active while it is watched. The first failed check on
any host raises, and the deploy undoes itself as after a failed health check: every host
is switched back, after_rollback runs, the release is marked failed with the check's
output as the reason (an incident for ``metrics``), exit 1. Ctrl-C ends the watch only:
the release stays live, and the output says so.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import commands, incidents
from ..errors import DeployFailed

if TYPE_CHECKING:
    from .deploy import DeployRun


def watch(run: DeployRun) -> None:
    """Watch the live release; raises DeployFailed naming the host and its output on a failure."""
    spec = run.config.rollout.watch
    if spec is None or run.fleet.dry_run:
        return
    fleet, reporter = run.fleet, run.reporter
    directory = fleet.layout.release(run.number)
    script = commands.watch_check(directory, spec.command, spec.url, spec.timeout)
    start = time.monotonic()
    reporter.line(f"watching release {run.number} for {spec.duration:g}s, every {spec.interval:g}s")
    run.cause = incidents.WATCH
    try:
        while True:
            outcomes = fleet.each(lambda s: s.run(script))
            elapsed = time.monotonic() - start
            bad = [o for o in outcomes if not (o.ok and o.value.ok)]
            if bad:
                first = bad[0]
                why = first.value.output_tail() if first.ok else first.reason()
                reporter.step(first.name, "watch", "FAILED")
                raise DeployFailed(
                    f"host {first.name}: watch failed for release {run.number} after {elapsed:.0f}s: {why}"
                )
            left = max(0.0, spec.duration - elapsed)
            reporter.line(f"  watch: {len(outcomes)} host(s) good, {left:.0f}s left")
            if left <= 0:
                break
            time.sleep(min(spec.interval, left))
    except KeyboardInterrupt:
        fleet.cancel.clear()
        run.cause = None
        reporter.line(
            f"watch ended by Ctrl-C after {time.monotonic() - start:.0f}s: release {run.number} "
            "stays live on every host (nothing was switched back)"
        )
        return
    run.cause = None
    reporter.line(f"watch passed: release {run.number} was good on every host for {spec.duration:g}s")
