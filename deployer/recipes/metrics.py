"""Metrics: the four DORA keys of a stage and its incidents, from the hosts' release logs.

The story: read every host's state (read only), merge the logs into one timeline (one
event written to many hosts counts once), ask the local git repository when each
deployed commit was made, compute (:mod:`deployer.dora`), print, and with ``--json`` one
document, with ``--html`` a self-contained dashboard. Nothing changes on any host.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from .. import dora, git, plan
from ..config import Config
from ..errors import ConfigError
from ..fleet import Fleet, SessionOpener
from ..output import Reporter
from ..transport import open_session


def metrics(
    config: Config,
    reporter: Reporter,
    since: str = "30d",
    until: str | None = None,
    html: str | None = None,
    opener: SessionOpener = open_session,
) -> dict:
    """Compute, print and return the stage's DORA keys over the window."""
    now = datetime.now(timezone.utc)
    end = dora.parse_since(until, now, "--until") if until else now
    start = dora.parse_since(since, end)
    if start >= end:
        raise ConfigError(f"--since: {since!r} is not before the end of the window ({end.isoformat()})")
    with Fleet.connect(config, reporter, opener=opener) as fleet:
        facts = fleet.probe()
    events = plan.merged_log(facts)
    commits = _commit_times(config, dora.lead_time_inputs(events, dora.deployments(events)))
    report = {"stage": config.stage, **dora.compute(events, start, end, commits)}
    report["hosts"] = {name: f.current for name, f in facts.items()}
    _print(reporter, report)
    if html:
        _write_html(config, report, html)
        reporter.line(f"dashboard written to {html}")
    reporter.document(report)
    return report


def _commit_times(config: Config, rows: list[tuple[int, str | None, str | None]]) -> dict:
    """For each release, the commit times it brought (None: no revision, or one this
    repository lacks); the repository is read once, however many releases there are."""
    known, graph = git.commit_graph(config.root, [r for _, new, old in rows for r in (new, old) if r])
    return {
        number: git.range_times(graph, known.get(old) if old else None, known[new]) if new in known else None
        for number, new, old in rows
    }


def _write_html(config: Config, report: dict, path: str) -> None:
    from .. import dashboard

    target = Path(path)
    try:
        target.write_text(dashboard.render(config.application, report), encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--html: cannot write {path}: {exc.strerror}") from None


def describe_seconds(value: float | None) -> str:
    """A duration as a person reads it: 45s, 12m, 3.5h, 2.0d; '-' when unknown."""
    if value is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{value:.0f}s"


def key_lines(report: dict) -> list[tuple[str, str, str | None]]:
    """The four keys as (name, value, band), for the text output and the dashboard."""
    bands = report["bands"]
    lead, restore, cfr = (
        report["lead_time_seconds"],
        report["time_to_restore_seconds"],
        report["change_failure_rate"],
    )
    return [
        (
            "deployment frequency",
            f"{report['deploys_per_day']:g}/day ({report['deploys']} deploys)",
            bands["deploys_per_day"],
        ),
        (
            "lead time for changes",
            f"median {describe_seconds(lead['median'])}, p90 {describe_seconds(lead['p90'])} "
            f"({lead['samples']} commits)",
            bands["lead_time_seconds"],
        ),
        (
            "change failure rate",
            "-" if cfr is None else f"{cfr * 100:.1f}% ({len(report['incidents'])} of {report['deploys']})",
            bands["change_failure_rate"],
        ),
        (
            "time to restore",
            f"median {describe_seconds(restore['median'])} ({restore['samples']} incidents)",
            bands["time_to_restore_seconds"],
        ),
    ]


def _print(reporter: Reporter, report: dict) -> None:
    reporter.line(f"{report['stage']}: {report['since'][:19]} to {report['until'][:19]} (UTC)")
    reporter.table(["key", "value", "DORA band"], [[k, v, b or "-"] for k, v, b in key_lines(report)])
    if report["incidents"]:
        reporter.line("incidents:")
        reporter.table(
            ["release", "went live (UTC)", "restored (UTC)", "took", "reason"],
            [
                [
                    i["release"],
                    i["went_live"][:19].replace("T", " "),
                    (i["restored_at"] or "-")[:19].replace("T", " "),
                    describe_seconds(i["seconds"]),
                    (i["reason"] or "")[:60],
                ]
                for i in report["incidents"]
            ],
        )
    for note in report["notes"]:
        reporter.line(f"note: {note}")
