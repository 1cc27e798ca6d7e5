"""The final table of deploy, rollback and promote, and its ``--json`` shape."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class HostReport:
    """One row of the final summary."""

    host: str
    release: int | None
    previous: int | None
    status: str
    seconds: float = 0.0


@dataclass
class Summary:
    command: str
    stage: str
    release: int | None
    rows: list[HostReport] = field(default_factory=list)
    seconds: float = 0.0
    dry_run: bool = False
    revision: str | None = None

    def to_dict(self) -> dict:
        """The documented ``--json`` shape of deploy, rollback and promote."""
        return {
            "ok": True,
            "command": self.command,
            "stage": self.stage,
            "release": self.release,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
            "hosts": [
                {
                    "host": r.host,
                    "release": r.release,
                    "previous": r.previous,
                    "status": r.status,
                    "seconds": round(r.seconds, 3),
                }
                for r in self.rows
            ],
        }


def print_summary(reporter, summary: Summary) -> None:
    """The closing table and line of a deploy, rollback or promote (and its JSON document)."""
    reporter.table(
        ["host", "release", "previous", "status", "time"],
        [
            [r.host, r.release, "-" if r.previous is None else r.previous, r.status, f"{r.seconds:.2f}s"]
            for r in summary.rows
        ],
        final=True,
    )
    what = "dry run of " if summary.dry_run else ""
    if summary.command == "rollback":
        done = f"{what}rollback of {summary.stage} to release {summary.release}"
    else:
        done = f"{what}{summary.command} of release {summary.release} to {summary.stage}"
    reporter.final(f"{done}: done in {summary.seconds:.2f}s")
    reporter.document(summary.to_dict())
    from .. import stepsummary

    stepsummary.append(reporter.secrets.mask(stepsummary.markdown(summary)))
