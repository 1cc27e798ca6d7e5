"""Maintenance mode: put up (or take down) the page the web server answers 503 with.

The story: render the page locally (a template error stops here, before any host is
touched), connect, write the page and its record atomically on every host (or remove
them), and log the change in the release log so ``history`` shows it. It never takes
the deploy lock: fixing things while the site is down usually means deploying.

What is read back from a host (the record) is the host's data, not ours: it is parsed
here, type-checked, stripped of control characters and shortened before anything shows it.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex

from .. import untrusted
from ..commands import maintenance as builders
from ..config import Config
from ..errors import ConfigError
from ..failures import checked
from ..fleet import Fleet, SessionOpener
from ..localstate import whoami
from ..output import Reporter
from ..runner import Outcome
from ..transport import Session, open_session
from .eventlog import EventLog, now_iso

DEFAULTS = Path(__file__).resolve().parent.parent / "data"
TEMPLATE = "maintenance.html.j2"
_ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d{1,6})?)?([+-]\d\d:\d\d|Z)?")
__all__ = ["MaintenanceState", "clean", "describe", "maintenance", "parse_record", "record", "render_page"]


@dataclass(frozen=True)
class MaintenanceState:
    """Maintenance as one host reports it: on (its page exists), since when, why, by whom."""

    since: str | None = None
    reason: str | None = None
    by: str | None = None

    def to_dict(self) -> dict:
        return {"on": True, "since": self.since, "reason": self.reason, "by": self.by}


def clean(value: object, limit: int = 200) -> str | None:
    """A string fit to print: non-strings are dropped, control and format characters
    (terminal escapes, bidi overrides) removed, the rest shortened to ``limit``."""
    if not isinstance(value, str):
        return None
    text = "".join(ch if unicodedata.category(ch)[0] != "C" else " " for ch in value)
    text = " ".join(text.split())[:limit]
    return text or None


def parse_record(raw: str | None) -> MaintenanceState | None:
    """The probe's ``maintenance`` line (``None``: the page is not there). A record that is
    missing or unreadable still means maintenance is on (the page is what counts)."""
    if raw is None:
        return None
    data = untrusted.json_object(raw) or {}  # never raises: deep nesting, NaN, not an object
    since = clean(data.get("since"), 40)
    if since is not None and not _ISO.fullmatch(since):
        since = None
    return MaintenanceState(since, clean(data.get("reason")), clean(data.get("by"), 80))


def describe(state: MaintenanceState) -> str:
    """``maintenance on since 2026-12-02 04:30 UTC (database upgrade)``."""
    since = f" since {state.since[:16].replace('T', ' ')} UTC" if state.since else ""
    reason = f" ({state.reason})" if state.reason else ""
    by = f" by {state.by}" if state.by else ""
    return f"maintenance on{since}{by}{reason}"


def record(config: Config, reason: str | None, since: str) -> str:
    return json.dumps(
        {"since": since, "reason": reason, "by": whoami(), "stage": config.stage}, sort_keys=True
    )


def render_page(config: Config, reason: str | None, since: str) -> str:
    """The page, from the project's templates/maintenance.html.j2, else the default."""
    import jinja2

    project = config.templates_dir / TEMPLATE
    folder = project.parent if project.is_file() else DEFAULTS
    where = f"templates/{TEMPLATE}" if project.is_file() else f"deployer/data/{TEMPLATE}"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)), undefined=jinja2.StrictUndefined, autoescape=True
    )
    context = {"application": config.application, "stage": config.stage, "reason": reason or ""}
    context["since"] = since
    try:
        return env.get_template(TEMPLATE).render(context)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"{where}: line {exc.lineno}: syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"{where}: {exc.message}") from None


def maintenance(
    config: Config,
    reporter: Reporter,
    on: bool,
    reason: str | None = None,
    dry_run: bool = False,
    opener: SessionOpener = open_session,
) -> dict:
    """Turn maintenance on (``on``) or off on every host; no lock is taken."""
    reason = clean(reason, 500) if on else None
    since = now_iso()
    page = render_page(config, reason, since).encode("utf-8") if on else None
    state = "on" if on else "off"
    with Fleet.connect(config, reporter, opener=opener, dry_run=dry_run) as fleet:
        before = _states(fleet) if dry_run else {}
        if on:
            script = builders.maintenance_on(fleet.layout, record(config, reason, since), token_hex(6))
        else:
            script = builders.maintenance_off(fleet.layout)

        def step(session: Session) -> bool:
            result = checked(session, script, "maintenance", page)
            return before.get(session.host.name, result.stdout.strip().endswith("was on"))

        def done(outcome: Outcome[bool]) -> str:
            return f"{'would be ' if dry_run else ''}{state} (was {'on' if outcome.value else 'off'})"

        outcomes = fleet.each_reported("maintenance", step, done)
        log = EventLog(fleet, "maintenance")
        log.append(log.make(None, state, detail=reason))
    detail = f": {reason}" if reason else ""
    what = "dry run of " if dry_run else ""
    reporter.final(f"{what}maintenance {state} for {config.stage} on {len(outcomes)} host(s){detail}")
    data = {
        "command": "maintenance", "ok": True, "stage": config.stage, "maintenance": state,
        "reason": reason, "since": since if on else None, "dry_run": dry_run,
        "hosts": {o.name: {"was_on": bool(o.value)} for o in outcomes},
    }  # fmt: skip
    reporter.document(data)
    return data


def _states(fleet: Fleet) -> dict[str, bool]:
    """For a dry run: whether each host is in maintenance now (read only)."""
    return {name: facts.maintenance is not None for name, facts in fleet.probe().items()}
