"""Scheduled cleanup: install (or remove) on each host a systemd user timer, or a cron entry
where there is no systemd, that runs a server-side cleanup with the stage's keep policy.

The files are rendered from ``templates/deployer/*.j2`` in the project when present, else
from the defaults shipped in ``deployer/data/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from .. import commands
from ..config import Config, Schedule
from ..failures import checked
from ..fleet import Fleet, SessionOpener
from ..layout import Layout
from ..output import Reporter
from ..runner import Outcome
from ..shell import quote
from ..transport import Session, open_session

DEFAULTS = Path(__file__).resolve().parent.parent / "data"


def unit_name(config: Config) -> str:
    raw = f"deployer-cleanup-{config.application}-{config.stage}" + (
        f"-{config.instance}" if config.instance else ""
    )
    return re.sub(r"[^A-Za-z0-9_.-]", "-", raw)


def marker(config: Config) -> str:
    """Tags our crontab line, so scheduling again or removing touches only ours."""
    return f"# deployer-cleanup:{config.deploy_to}"


def render(config: Config, schedule: Schedule | None = None) -> dict[str, str]:
    """The four files, rendered (pure apart from reading the templates)."""
    import jinja2

    schedule = schedule or config.schedule
    loader = jinja2.ChoiceLoader(
        [
            jinja2.FileSystemLoader(str(config.templates_dir / "deployer")),
            jinja2.FileSystemLoader(str(DEFAULTS)),
        ]
    )
    env = jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["shell_quote"] = quote
    layout = Layout(config.deploy_to)
    context = {
        "application": config.application,
        "stage": config.stage,
        "deploy_to": config.deploy_to,
        "keep_releases": config.keep_releases,
        "calendar": schedule.calendar,
        "cron": schedule.cron,
        "script": quote(layout.state_file("cleanup.sh")),
        "log": quote(layout.state_file("cleanup.log")),
        "marker": marker(config),
    }
    return {name: env.get_template(f"{name}.j2").render(context) for name in commands.SCHEDULE_FILES}


def schedule_cleanup(
    config: Config, reporter: Reporter, opener: SessionOpener = open_session
) -> dict[str, str]:
    """Install the scheduled cleanup on every host; returns how it runs on each."""
    from ..templates import to_tar

    schedule = config.schedule
    files = render(config, schedule)
    payload = to_tar(
        {name: (text.encode(), 0o755 if name == "cleanup.sh" else 0o644) for name, text in files.items()}
    )
    layout, unit = Layout(config.deploy_to), unit_name(config)

    def step(session: Session) -> str:
        via = schedule.via
        if via == "auto":
            via = checked(session, commands.DETECT_SCHEDULER, "detect systemd", read_only=True).stdout.strip()
            via = via or "cron"
        script = commands.install_schedule(layout, unit, marker(config), via)
        checked(session, script, f"install {via} cleanup", payload)
        return via

    def done(outcome: Outcome[str]) -> str:
        when = schedule.calendar if outcome.value == "systemd" else schedule.cron
        return f"{outcome.value}: cleanup {when}, keeping {config.keep_releases}"

    with Fleet.connect(config, reporter, opener=opener) as fleet:
        outcomes = fleet.each_reported("schedule", step, done)
    return {o.name: o.value for o in outcomes}


def unschedule_cleanup(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> None:
    """Remove the scheduled cleanup (timer or cron entry, and its files) from every host."""
    script = commands.remove_schedule(Layout(config.deploy_to), unit_name(config), marker(config))
    with Fleet.connect(config, reporter, opener=opener) as fleet:
        fleet.each_reported(
            "unschedule",
            lambda s: checked(s, script, "remove scheduled cleanup"),
            lambda o: "scheduled cleanup removed",
        )
