"""The command-line flags of the tasks: each declared once, with its default and help.

``FLAGS`` are shared by many tasks; ``OWN`` are flags only some tasks take, picked by
name with :func:`_own` in the task table (``deployer.cli.TASKS``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Flag:
    default: Any
    help: str


FLAGS = {
    "stage": Flag(
        None, "Stage: config/<stage>.yml (default: $DEPLOYER_STAGE, else default_stage in config/deploy.yml)."
    ),
    "instance": Flag(None, "For a template stage (one using {instance}, e.g. review apps): which instance."),
    "hosts": Flag(
        None, "Only these hosts (comma-separated names as in the config, e.g. web1 or 10.0.0.5:2222)."
    ),
    "roles": Flag(None, "Only hosts with one of these roles (comma-separated)."),
    "json": Flag(False, "Print one JSON document (documented shape) instead of text."),
    "verbose": Flag(False, "Print every remote command as it runs (secrets masked)."),
    "quiet": Flag(False, "Print only errors and the final line."),
    "dry_run": Flag(
        False, "Connect and read the hosts, then print every command that would run; change nothing."
    ),
}
TARGET = ("stage", "instance", "hosts", "roles")  # which hosts a task works on
OUTPUT = ("json", "verbose", "quiet")


OWN = {  # flags only some tasks take
    "ref": Flag(
        None, "Build from this git branch, tag or commit (git archive; the working tree is not used)."
    ),
    "force_unlock": Flag(False, "First break a stale lock left by a killed deploy (shows its holder)."),
    "to": Flag(None, "Release number to roll back to (default: the previous good one)."),
    "from_": Flag(None, "The stage whose current release is promoted."),
    "to_stage": Flag(None, "The stage it is deployed to."),
    "release": Flag(None, "Promote this release of the source stage instead of its current one."),
    "unverified": Flag(
        False,
        "Promote a release nothing vouches for (not deployed from this machine, no seal): shipped "
        "as the source host holds it, under its own sha256.",
    ),
    "limit": Flag(None, "Show the last N events (default 50, 0 for all)."),
    "compare": Flag("HEAD", "Compare with this ref (default HEAD)."),
    "schedule": Flag(False, "Install on each host a systemd timer (or cron entry) that cleans up regularly."),
    "unschedule": Flag(False, "Remove that scheduled cleanup."),
    "yes": Flag(False, "Really remove the instance."),
    "rollback_reason": Flag(None, "Why (recorded in the release log; asked on a terminal when missing)."),
    "migrate_down": Flag(False, "When the rollback crosses migrations: run migrations.down first."),
    "with_data": Flag(
        False,
        "When the rollback crosses migrations: restore the snapshot from before them (loses later writes).",
    ),
    "code_only": Flag(
        False, "When the rollback crosses migrations: switch the code anyway, schema left as is."
    ),
    "data_yes": Flag(False, "With --with-data: confirm the loss of later writes (needed off a terminal)."),
    "force": Flag(False, "Ship an artifact that was rolled back (or failed its checks) on this stage."),
    "since": Flag("30d", "Start of the window: a span before now (30d, 12h, 2w) or an ISO date."),
    "until": Flag(None, "End of the window (default now): an ISO date or time."),
    "html": Flag(None, "Also write a self-contained HTML dashboard to this file."),
    "on": Flag(False, "Put up the maintenance page (shared/maintenance.html) on every host."),
    "off": Flag(False, "Take the maintenance page down."),
    "reason": Flag(None, "With --on: why, shown on the page, by releases and check, and in history."),
}


def _own(*names: str) -> dict[str, Flag]:
    """Own flags by name; ``to_stage`` and ``compare`` are ``--to`` and ``--ref`` with
    another meaning."""
    renamed = {"to_stage": "to", "compare": "ref", "rollback_reason": "reason", "data_yes": "yes"}
    return {renamed.get(n, n): OWN[n] for n in names}
