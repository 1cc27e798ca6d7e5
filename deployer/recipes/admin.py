"""Admin: break a stale lock, and destroy an instance of a template stage (a review app)."""

from __future__ import annotations

from .. import commands
from ..config import Config
from ..failures import checked
from ..fleet import Fleet, SessionOpener
from ..layout import Layout
from ..output import Reporter
from ..transport import open_session


def unlock(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> dict[str, dict]:
    """Break the stage lock on every host, saying who held it and since when."""
    with Fleet.connect(config, reporter, opener=opener) as fleet:
        return fleet.break_locks()


def destroy(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> list[str]:
    """Remove an instance of a template stage from every host: its whole deploy_to,
    releases, shared files and log. Only for template stages (the task checks)."""
    script = commands.remove_deploy_to(Layout(config.deploy_to))
    with Fleet.connect(config, reporter, opener=opener) as fleet, fleet.locked("destroy"):
        fleet.each_reported(
            "destroy", lambda s: checked(s, script, "destroy"), lambda o: f"removed {config.deploy_to}"
        )
    reporter.final(f"destroyed {config.stage} instance {config.instance} on {len(config.hosts)} host(s)")
    return [h.name for h in config.hosts]
