"""Scheduled cleanup: install (or remove) on each host a systemd user timer, or a cron entry
where there is no systemd, that runs a server-side cleanup with the stage's keep policy.

The files are rendered from ``templates/deployer/*.j2`` in the project when present, else
from the defaults shipped in ``deployer/data/``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .config import Config
from .errors import DeployFailed
from .fleet import Fleet, SessionOpener, checked
from .layout import Layout
from .output import Reporter
from .shell import argv, quote, script
from .transport import open_session

DEFAULTS = Path(__file__).parent / "data"
FILES = ("cleanup.sh", "cleanup.service", "cleanup.timer", "cron")


@dataclass(frozen=True)
class Schedule:
    via: str = "auto"
    calendar: str = "daily"
    cron: str = "17 3 * * *"


def unit_name(config: Config) -> str:
    raw = f"deployer-cleanup-{config.application}-{config.stage}" + (
        f"-{config.instance}" if config.instance else ""
    )
    return re.sub(r"[^A-Za-z0-9_.-]", "-", raw)


def marker(config: Config) -> str:
    """Tags our crontab line, so scheduling again or removing touches only ours."""
    return f"# deployer-cleanup:{config.deploy_to}"


def render(config: Config, schedule: Schedule) -> dict[str, str]:
    """The four files, rendered (pure apart from reading the templates)."""
    import jinja2

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
        "script": quote(f"{layout.state}/cleanup.sh"),
        "log": quote(f"{layout.state}/cleanup.log"),
        "marker": marker(config),
    }
    return {name: env.get_template(f"{name}.j2").render(context) for name in FILES}


def install_command(config: Config, via: str) -> str:
    """Unpack the rendered files (a tar on stdin) into .deployer/ and activate them."""
    state = Layout(config.deploy_to).state
    name = unit_name(config)
    steps = ["umask 022", argv("mkdir", "-p", state), f"tar -xpf - -C {quote(state)} --no-same-owner"]
    if via == "systemd":
        units = "$HOME/.config/systemd/user"
        steps += [
            f'mkdir -p "{units}"',
            f'cp {quote(state + "/cleanup.service")} "{units}"/{quote(name + ".service")}',
            f'cp {quote(state + "/cleanup.timer")} "{units}"/{quote(name + ".timer")}',
            "systemctl --user daemon-reload",
            argv("systemctl", "--user", "enable", "--now", name + ".timer"),
        ]
    else:
        steps += [
            "command -v crontab >/dev/null || { echo 'no crontab on this host (install cron, or use systemd)' >&2; exit 1; }",
            f"{{ crontab -l 2>/dev/null | grep -vF {quote(marker(config))} || true; cat {quote(state + '/cron')}; }} | crontab -",
        ]
    return script(*steps)


def remove_command(config: Config) -> str:
    state = Layout(config.deploy_to).state
    name = unit_name(config)
    units = "$HOME/.config/systemd/user"
    return script(
        "if command -v crontab >/dev/null; then",
        f"  {{ crontab -l 2>/dev/null | grep -vF {quote(marker(config))} || true; }} | crontab -",
        "fi",
        f'if [ -f "{units}"/{quote(name + ".timer")} ]; then',
        f"  systemctl --user disable --now {quote(name + '.timer')} 2>/dev/null || true",
        f'  rm -f "{units}"/{quote(name + ".timer")} "{units}"/{quote(name + ".service")}',
        "  systemctl --user daemon-reload 2>/dev/null || true",
        "fi",
        argv("rm", "-f", "--", *(f"{state}/{f}" for f in FILES)),
    )


DETECT = "if command -v systemctl >/dev/null && systemctl --user show-environment >/dev/null 2>&1; then echo systemd; else echo cron; fi"


def schedule_cleanup(
    config: Config, reporter: Reporter, schedule: Schedule, opener: SessionOpener = open_session
) -> dict[str, str]:
    """Install the scheduled cleanup on every host; returns how it runs on each."""
    from .templates import to_tar

    files = render(config, schedule)
    payload = to_tar(
        {name: (text.encode(), 0o755 if name == "cleanup.sh" else 0o644) for name, text in files.items()}
    )
    chosen: dict[str, str] = {}
    with Fleet.connect(config, reporter, opener=opener) as fleet:

        def step(session):
            via = schedule.via
            if via == "auto":
                via = checked(session, DETECT, "detect systemd", read_only=True).stdout.strip() or "cron"
            checked(session, install_command(config, via), f"install {via} cleanup", payload)
            return via

        for outcome in fleet.each(step):
            if not outcome.ok:
                raise DeployFailed(outcome.reason())
            chosen[outcome.name] = outcome.value
            when = schedule.calendar if outcome.value == "systemd" else schedule.cron
            reporter.step(
                outcome.name, "schedule", f"{outcome.value}: cleanup {when}, keeping {config.keep_releases}"
            )
    return chosen


def unschedule_cleanup(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> None:
    script_text = remove_command(config)
    with Fleet.connect(config, reporter, opener=opener) as fleet:
        for outcome in fleet.each(lambda s: checked(s, script_text, "remove scheduled cleanup")):
            if not outcome.ok:
                raise DeployFailed(outcome.reason())
            reporter.step(outcome.name, "unschedule", "scheduled cleanup removed")
