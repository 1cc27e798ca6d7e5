"""The job summary of GitHub Actions: when ``GITHUB_STEP_SUMMARY`` names a file, a deploy,
rollback or promote appends a short Markdown account of itself there (hosts, release,
previous, status, time), and a failed one its error line.

Everything in it is plain text: host names, statuses and messages go into code spans,
with backticks and pipes neutralised, so nothing a config or a host says can become a
link, an image or markup on the run's page.
"""

from __future__ import annotations

import os
import sys

from . import NAME
from .untrusted import one_line, printable

ENV = "GITHUB_STEP_SUMMARY"
COMMANDS = ("deploy", "rollback", "promote")


def code(text: object) -> str:
    """``text`` as a code span that is safe in a table cell: one line, no backtick, and
    pipes escaped (GitHub splits cells on a pipe even inside a code span)."""
    cleaned = printable(one_line(str(text))).replace("`", "'").replace("|", "\\|")
    return f"`{cleaned}`" if cleaned.strip() else "-"


def markdown(summary) -> str:
    """The summary of a finished run (a ``recipes.summary.Summary``)."""
    what = "dry run of " if summary.dry_run else ""
    title = f"{what}{summary.command} of release {summary.release} to {summary.stage}"
    lines = [
        f"### {NAME}: {code(title)} done in {summary.seconds:.2f}s",
        "",
        "| host | release | previous | status | time |",
        "|---|---|---|---|---|",
    ]
    for row in summary.rows:
        previous = "-" if row.previous is None else code(row.previous)
        cells = (code(row.host), code(row.release), previous, code(row.status), f"{row.seconds:.2f}s")
        lines.append("| " + " | ".join(cells) + " |")
    if summary.revision:
        lines += ["", f"Revision {code(summary.revision)}."]
    return "\n".join(lines) + "\n\n"


def failure(command: str, stage: str | None, message: str, exit_code: int, seconds: float) -> str:
    """The summary of a run that ended with an error line (already masked)."""
    what = code(f"{command} to {stage or '-'}")
    return f"### {NAME}: {what} failed (exit {exit_code}) after {seconds:.2f}s\n\n{code(message)}\n\n"


def append(text: str) -> None:
    """Add ``text`` to the summary file, if the job has one. A file that cannot be written
    is a warning: the deploy itself went as it went."""
    path = os.environ.get(ENV)
    if not path:
        return
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        print(f"warning: {ENV}: cannot append to {path}: {exc.strerror or exc}", file=sys.stderr)
