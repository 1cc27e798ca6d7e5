"""Everything the tool prints goes through a Reporter, which masks secrets."""

from __future__ import annotations

import sys
from typing import Sequence, TextIO

from .templates import Secrets


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


class Reporter:
    """Plain, line-oriented output: readable in a terminal and in CI logs."""

    def __init__(self, stream: TextIO | None = None, secrets: Secrets | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stdout
        self.secrets = secrets or Secrets()
        self.quiet = quiet

    def line(self, text: str = "") -> None:
        if not self.quiet:
            print(self.secrets.mask(text), file=self.stream, flush=True)

    def step(self, host: str, step: str, result: str, seconds: float | None = None) -> None:
        took = f"  {seconds:.2f}s" if seconds is not None else ""
        self.line(f"  {host:<22} {step:<16} {result}{took}")

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
        cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
        for index, row in enumerate(cells):
            self.line("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
            if index == 0:
                self.line("  " + "  ".join("-" * w for w in widths))
