"""Tasks that read or tidy a stage without deploying: releases, cleanup, check, unlock."""

from __future__ import annotations

from dataclasses import dataclass, field

from . import plan, releaselog
from .config import Config
from .deploy import cleanup_after
from .facts import HostFacts
from .fleet import Fleet, SessionOpener, checked, describe_lock
from .layout import Layout
from .output import Reporter
from .shell import quote
from .transport import open_session


def releases(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> dict[str, HostFacts]:
    """Print, per host, every release kept: current, status, when, by whom, checksum."""
    with Fleet.connect(config, reporter, opener=opener) as fleet:
        facts = fleet.probe()
    events = plan.merged_log(facts)
    info = releaselog.deploy_info(events)
    status = releaselog.statuses(events)
    currents = {f.current for f in facts.values()}
    for name, fact in facts.items():
        reporter.line(f"{name}  ({config.deploy_to})")
        if not fact.releases:
            reporter.line("  no releases")
            continue
        rows = []
        for number in sorted(fact.releases, reverse=True):
            event = info.get(number)
            state = status.get(number, "?") if fact.releases[number] == "complete" else "partial"
            rows.append([
                "*" if number == fact.current else "",
                number,
                state,
                event.at[:19].replace("T", " ") if event else "",
                event.by if event else "",
                (event.sha256 or "")[:12] if event else "",
                (event.revision or "") if event else "",
            ])
        reporter.table(["", "release", "status", "deployed (UTC)", "by", "sha256", "revision"], rows)
        if fact.current is None and fact.current_raw:
            reporter.line(f"  current points to {fact.current_raw!r}, which is not a release")
        if fact.lock:
            reporter.line(f"  locked by {describe_lock(fact.lock)}")
    if len(currents) > 1:
        detail = ", ".join(f"{n}: {f.current}" for n, f in facts.items())
        reporter.line(f"hosts DIVERGE on current: {detail}")
    return facts


def cleanup(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> dict[str, list[int]]:
    """Remove releases beyond keep_releases, failed ones first; never current or the rollback target."""
    with Fleet.connect(config, reporter, opener=opener) as fleet, fleet.locked("cleanup"):
        victims = cleanup_after(fleet, [])
    if not any(victims.values()):
        reporter.line(f"nothing to clean up: every host keeps at most {config.keep_releases} releases")
    return victims


def unlock(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> dict[str, dict]:
    """Break the stage lock on every host, saying who held it and since when."""
    with Fleet.connect(config, reporter, opener=opener) as fleet:
        return fleet.break_locks()


@dataclass
class HostCheck:
    name: str
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_command(config: Config) -> str:
    """Read-only checks: writable, free space, tools. Prints tagged lines."""
    layout = Layout(config.deploy_to)
    d = quote(layout.deploy_to)
    lines = [
        f"D={d}",
        'P="$D"; while [ ! -e "$P" ]; do P=$(dirname "$P"); done',
        'if [ -w "$P" ] && [ -x "$P" ]; then echo "writable yes $P"; else echo "writable no $P"; fi',
        'printf "free_kb %s\\n" "$(df -Pk "$P" | awk \'NR==2 {print $4}\')"',
        'for t in tar mv readlink mkdir ln; do command -v $t >/dev/null 2>&1 || echo "missing_tool $t"; done',
        'mv --help 2>&1 | grep -q -- "-T" || echo "missing_tool mv -T (GNU coreutils)"',
    ]
    for path in config.shared_files:
        shared = quote(layout.shared_path(path))
        lines.append(f"[ -f {shared} ] || printf 'missing_shared %s\\n' {quote(path)}")
    return "\n".join(lines)


def check(config: Config, reporter: Reporter, opener: SessionOpener = open_session) -> dict[str, HostCheck]:
    """Reach every host and verify permissions, free disk and layout; change nothing."""
    from .facts import parse_probe, probe_command

    layout = Layout(config.deploy_to)
    # Check lines first: the probe ends with the log, which must stay last.
    script = check_command(config) + "\necho '--- end check ---'\n" + probe_command(layout)
    reports: dict[str, HostCheck] = {}
    with Fleet.connect(config, reporter, opener=opener, allow_missing=True) as fleet:
        for name, reason in fleet.unreachable.items():
            reports[name] = HostCheck(name, [reason])
        for outcome in fleet.each(lambda s: checked(s, script, "check")):
            report = reports.setdefault(outcome.name, HostCheck(outcome.name))
            if not outcome.ok:
                report.problems.append(outcome.reason())
                continue
            head, _, rest = outcome.value.stdout.partition("--- end check ---\n")
            judge(report, head, parse_probe(rest), config)
    for report in reports.values():
        if report.problems:
            reporter.line(f"{report.name}: {len(report.problems)} problem(s)")
            for problem in report.problems:
                reporter.line(f"  - {problem}")
        else:
            reporter.line(f"{report.name}: ok ({'; '.join(report.notes)})")
    return reports


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
            report.problems.append(f"shared file missing: {config.deploy_to}/shared/{rest} (create it before deploying)")
    if facts.current_raw and facts.current is None:
        report.problems.append(f"current points to {facts.current_raw!r}, which is not a release directory")
    elif facts.current is not None and not facts.current_ok:
        report.problems.append(f"current points to releases/{facts.current}, which does not exist")
    if facts.foreign:
        report.notes.append(f"releases/ holds entries this tool did not create (left alone): {', '.join(facts.foreign)}")
    if facts.lock:
        report.problems.append(f"deploy lock held by {describe_lock(facts.lock)}")
    partial = [n for n, s in facts.releases.items() if s != "complete"]
    if partial:
        report.notes.append(f"incomplete releases (cleanup removes them): {', '.join(map(str, partial))}")
    report.notes.append(f"current release {facts.current}" if facts.current is not None else "no current release")
