"""What a stage runs, read only: releases, history, pending commits, and check.

Each reads every host's state in one probe, decides from it with pure code, prints a
table or a line per host, and with ``--json`` one documented document. None changes
anything on any host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from .. import commands, git, incidents, jumps, migrations, plan, releaselog
from ..config import Config
from ..errors import ConfigError, DeployerError, DeployFailed
from ..facts import CHECK_MARKER, HostFacts, parse_probe
from ..failures import checked
from ..fleet import Fleet, SessionOpener, describe_lock
from ..layout import Layout
from ..output import Reporter, human_bytes
from ..transport import open_session
from ..untrusted import one_line
from .maintenance import describe as describe_maintenance
from .maintenance import parse_record as maintenance_state
from .migrate import note_schema


def describe_releases(config: Config, facts: dict[str, HostFacts]) -> dict:
    """The releases of a stage as data (the documented ``releases --json`` shape)."""
    events = plan.merged_log(facts)
    info = releaselog.deploy_info(events)
    status = releaselog.statuses(events)
    reasons = incidents.reasons(events)
    schemas = migrations.recorded(events)
    hosts = {}
    for name, fact in facts.items():
        rows = []
        for number in sorted(fact.releases, reverse=True):
            event = info.get(number)
            migrated = schemas.get(number)
            rows.append(
                {
                    "release": number,
                    "current": number == fact.current,
                    "status": _shown_status(
                        status.get(number, "unknown"), number == fact.current, fact.releases[number]
                    ),
                    "deployed_at": event.at if event else None,
                    "deployed_by": event.by if event else None,
                    "sha256": event.sha256 if event else None,
                    "revision": event.revision if event else None,
                    "subject": (event.note("subject") or None) if event else None,
                    "reason": reasons.get(number) or None,
                    "schema_before": migrated.before if migrated else None,
                    "schema_after": migrated.after if migrated else None,
                    "snapshot_bytes": fact.snapshots.get(number),
                    "snapshot_path": Layout(config.deploy_to).snapshot(number)
                    if number in fact.snapshots
                    else None,
                }
            )
        hosts[name] = {
            "current": fact.current,
            "current_target": fact.current_raw or None,
            "releases": rows,
            "lock": fact.lock,
            "maintenance": _maintenance(fact),
        }
    currents = {f.current for f in facts.values()}
    return {
        "stage": config.stage,
        "deploy_to": config.deploy_to,
        "hosts": hosts,
        "diverged": len(currents) > 1,
    }


RELEASE_COLUMNS = ("", "release", "status", "deployed (UTC)", "by", "sha256", "revision", "subject", "reason")


def _release_table(rows: list[dict]) -> tuple[list[str], list[list]]:
    """Headers and cells of one host's releases; a ``schema`` column once migrations ran."""
    cells = [
        [
            "*" if r["current"] else "",
            r["release"],
            r["status"],
            (r["deployed_at"] or "")[:19].replace("T", " "),
            r["deployed_by"] or "",
            (r["sha256"] or "")[:12],
            (r["revision"] or "")[:12],
            (r["subject"] or "")[:50],
            (r["reason"] or "")[:50],
        ]
        for r in rows
    ]
    headers = list(RELEASE_COLUMNS)
    if any(r["schema_after"] for r in rows):
        headers.insert(7, "schema")
        for row, r in zip(cells, rows, strict=True):
            row.insert(7, _schema_cell(r))
    return headers, cells


def _schema_cell(row: dict) -> str:
    """``2``, ``1->2`` when its migrations changed it, ``+snapshot 3.1 MB`` when one is kept."""
    before, after = row["schema_before"], row["schema_after"]
    if after is None:
        return ""
    cell = after if before == after else f"{before}->{after}"
    if row["snapshot_bytes"] is not None:
        cell += f" +snapshot {human_bytes(row['snapshot_bytes'])}"
    return cell


def _maintenance(fact: HostFacts) -> dict | None:
    state = maintenance_state(fact.maintenance)
    return state.to_dict() if state else None


def _shown_status(logged: str, current: bool, state: str) -> str:
    """``active`` is only the live release; one that was live before is ``inactive``."""
    if state != "complete":
        return "partial"
    if logged == releaselog.ACTIVE and not current:
        return "inactive"
    return logged


def releases(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> dict:
    """Print, per host, every release kept: current, status, when, by whom, checksum."""
    with Fleet.connect(config, reporter, opener=opener) as fleet:
        facts_of = fleet.probe()
        data = describe_releases(config, facts_of)
    for name, host in data["hosts"].items():
        reporter.line(f"{name}  ({config.deploy_to})")
        if not host["releases"]:
            reporter.line("  no releases")
        else:
            reporter.table(*_release_table(host["releases"]))
        if host["current"] is None and host["current_target"]:
            reporter.line(f"  current points to {host['current_target']!r}, which is not a release")
        if host["lock"]:
            reporter.line(f"  locked by {describe_lock(host['lock'])}")
        state = maintenance_state(facts_of[name].maintenance)
        if state:
            reporter.line(f"  {describe_maintenance(state)}")
    if data["diverged"]:
        detail = ", ".join(f"{n}: {h['current']}" for n, h in data["hosts"].items())
        reporter.final(f"hosts DIVERGE on current: {detail}")
    reporter.document(data)
    return data


def history(
    config: Config, reporter: Reporter, limit: int = 50, opener: SessionOpener = open_session
) -> dict:
    """Every event of the stage (deploy, rollback, promote, cleanup, failure), newest last."""
    with Fleet.connect(config, reporter, opener=opener) as fleet:
        events = plan.merged_log(fleet.probe())
    shown = events[-limit:] if limit else events
    rows = [
        [
            e.at[:19].replace("T", " "),
            e.event,
            "" if e.release is None else e.release,
            e.status or "",
            e.by,
            (e.sha256 or "")[:12],
            e.revision or "",
            (e.detail or "")[:60],
            e.note("reason")[:60],
        ]
        for e in shown
    ]
    if rows:
        reporter.table(
            ["when (UTC)", "event", "release", "status", "by", "sha256", "revision", "detail", "reason"], rows
        )
    else:
        reporter.line("no events yet")
    data = {"stage": config.stage, "events": [json.loads(e.to_json()) for e in shown]}
    reporter.document(data)
    return data


@dataclass
class HostCheck:
    name: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unreachable: bool = False


def check(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> dict[str, HostCheck]:
    """Reach every host and verify permissions, free disk and layout; change nothing."""
    script = commands.check(Layout(config.deploy_to), config.shared_files)
    reports: dict[str, HostCheck] = {}
    routes = _routes(config)
    with Fleet.connect(config, reporter, opener=opener, allow_missing=True) as fleet:
        for name, reason in fleet.unreachable.items():
            reports[name] = HostCheck(name, [reason], unreachable=True)
        for outcome in fleet.each(lambda s: checked(s, script, "check", read_only=True)):
            report = reports.setdefault(outcome.name, HostCheck(outcome.name))
            if not outcome.ok:
                report.problems.append(outcome.reason())
                continue
            head, _, rest = outcome.value.stdout.partition(CHECK_MARKER + "\n")
            facts = parse_probe(rest)
            judge(report, head, facts, config)
            if config.migrations is not None:
                note_schema(fleet, report, facts)
    hops = jumps.hop_report(routes, {n: r.problems[0] if r.unreachable else None for n, r in reports.items()})
    hosts = {
        name: {"ok": not r.problems, "unreachable": r.unreachable, "problems": r.problems, "notes": r.notes,
               "via": [jumps.describe(routes[name][:d]) for d in range(1, len(routes.get(name, ())) + 1)]}
        for name, r in reports.items()
    }  # fmt: skip
    reporter.document({"stage": config.stage, "hosts": hosts, "bastions": hops})
    for report in reports.values():
        if report.problems:
            reporter.line(f"{report.name}: {len(report.problems)} problem(s)")
            for problem in report.problems:
                reporter.line(f"  - {one_line(problem)}")
        else:
            via = [f"via {jumps.describe(routes[report.name])}"] if routes.get(report.name) else []
            reporter.line(f"{report.name}: ok ({'; '.join(via + report.notes)})")
    for hop, seen in hops.items():
        served = f"{len(seen['hosts'])} host(s): {', '.join(seen['hosts'])}"
        state = f"ok, one login serves {served}" if seen["ok"] else f"FAILED for {served}: {seen['problem']}"
        reporter.line(f"{hop}: {state}")
    return reports


def _routes(config: Config) -> dict:
    """Each host's bastions (none for a local transport); ~/.ssh/config is read, nothing opened."""
    if config.transport != "ssh":
        return {}
    from ..ssh import routes  # Fabric loads only for SSH stages

    return routes(config)


def judge(report: HostCheck, head: str, facts: HostFacts, config: Config) -> None:
    """Turn check output and facts into problems and notes (pure)."""
    for line in head.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "writable":
            ok, _, where = rest.partition(" ")
            if ok != "yes":
                report.problems.append(f"{where} is not writable by this user (deploy_to {config.deploy_to})")
        elif tag == "free_kb" and rest.isdigit():
            free = int(rest) * 1024
            report.notes.append(f"{free / 1024**3:.1f} GB free")
            if free < 100 * 1024**2:
                report.problems.append(f"only {free // 1024**2} MB free under {config.deploy_to}")
        elif tag == "missing_tool":
            report.problems.append(f"missing tool on host: {rest}")
        elif tag == "missing_shared":
            report.problems.append(
                f"shared file missing: {config.deploy_to}/shared/{rest} (create it before deploying)"
            )
    if facts.current_raw and facts.current is None:
        report.problems.append(f"current points to {facts.current_raw!r}, which is not a release directory")
    elif facts.current is not None and not facts.current_ok:
        report.problems.append(f"current points to releases/{facts.current}, which does not exist")
    if facts.foreign:
        report.notes.append(
            f"releases/ holds entries this tool did not create (left alone): {', '.join(facts.foreign)}"
        )
    if facts.lock:
        report.problems.append(f"deploy lock held by {describe_lock(facts.lock)}")
    state = maintenance_state(facts.maintenance)
    if state:
        report.notes.append(describe_maintenance(state))
    if facts.snapshots:
        size = human_bytes(sum(facts.snapshots.values()))
        report.notes.append(f"database snapshots: {len(facts.snapshots)} ({size})")
    partial = [n for n, s in facts.releases.items() if s != "complete"]
    if partial:
        report.notes.append(f"incomplete releases (cleanup removes them): {', '.join(map(str, partial))}")
    report.notes.append(
        f"current release {facts.current}" if facts.current is not None else "no current release"
    )


def pending(
    config: Config, reporter: Reporter, ref: str = "HEAD", opener: SessionOpener = open_session
) -> dict:
    """The commits between what is live on the stage and ``ref`` (like Heroku's pipelines:diff)."""
    if not git.is_repository(config.root):
        raise ConfigError(f"pending: {config.root} is not a git repository")
    target = git.resolve(config.root, ref)
    with Fleet.connect(config, reporter, opener=opener) as fleet:
        facts = fleet.probe()
    current, base = _live_revision(config, facts)
    commits = git.commits_between(config.root, base, target)
    reporter.line(
        f"{config.stage} runs release {current} ({base[:12]}); {len(commits)} commit(s) up to {ref}:"
    )
    for commit in commits:
        reporter.line(f"  {commit.sha[:12]}  {commit.author:<20}  {commit.subject}")
    data = {
        "stage": config.stage,
        "current_release": current,
        "deployed_revision": base,
        "ref": ref,
        "ref_revision": target,
        "commits": [{"sha": c.sha, "author": c.author, "subject": c.subject} for c in commits],
    }
    reporter.document(data)
    return data


def _live_revision(config: Config, facts: dict[str, HostFacts]) -> tuple[int, str]:
    """The live release and the full commit it was deployed from, known to the local repo."""
    current = plan.current_release(facts)
    if current is None:
        raise DeployFailed(f"pending: nothing is deployed on {config.stage} yet")
    event = releaselog.deploy_info(plan.merged_log(facts)).get(current)
    deployed = (event.revision or "").removesuffix("-dirty") if event else ""
    if not deployed:
        raise DeployFailed(f"pending: release {current} on {config.stage} has no recorded revision")
    try:
        return current, git.resolve(config.root, deployed)
    except DeployerError:
        raise DeployFailed(
            f"pending: release {current} was deployed from {deployed}, "
            "which this repository does not know (git fetch?)"
        ) from None
