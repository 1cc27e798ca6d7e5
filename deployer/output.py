"""Everything the tool prints goes through a Reporter, which masks secrets.

Modes: normal (a line per step and host), ``quiet`` (errors and the final line only),
``verbose`` (also every remote command, secrets masked) and ``json`` (nothing but one
JSON document at the end, for scripts). Upload progress bars appear only on a terminal;
in CI the same information is one plain line per step and host. ``NO_COLOR`` is honoured.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .untrusted import one_line, printable


class Secrets:
    """Values that must never be printed or logged."""

    def __init__(self) -> None:
        self.values: set[str] = set()

    def mask(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            if value:
                text = text.replace(value, "******")
        return text

    def add_url(self, url: str, whole: bool = False) -> None:
        """The secret parts of a URL: its password, query and fragment (a signed download
        link), and with ``whole`` everything past the host (a webhook's path is its key)."""
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(url)
            password = parts.password
        except ValueError:
            self.values.add(url)
            return
        secret = [password, parts.query, parts.fragment]
        if whole:
            secret += [url, parts.path if len(parts.path) > 1 else None]
        self.values.update(v for v in secret if v)

    def mask_data(self, data: Any) -> Any:
        """``data`` with every string masked, before it is encoded: once in JSON, a secret
        holding a quote, a backslash or a newline no longer looks like itself."""
        if isinstance(data, str):
            return self.mask(data)
        if isinstance(data, dict):
            return {self.mask_data(k): self.mask_data(v) for k, v in data.items()}
        if isinstance(data, (list, tuple)):
            return [self.mask_data(v) for v in data]
        return data


def counted(count: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def human_bytes(count: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if count < 1024 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GB"


class Reporter:
    """Plain, line-oriented output: readable in a terminal and in CI logs."""

    def __init__(
        self,
        stream: TextIO | None = None,
        secrets: Secrets | None = None,
        quiet: bool = False,
        verbose: bool = False,
        json_mode: bool = False,
    ) -> None:
        self.stream = stream or sys.stdout
        self.secrets = secrets or Secrets()
        self.quiet = quiet or json_mode
        self.verbose = verbose and not json_mode
        self.json_mode = json_mode
        self._lock = threading.Lock()
        self._progress = None

    @property
    def interactive(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty()) and not self.quiet

    def line(self, text: str = "") -> None:
        if not self.quiet:
            self._print(text)

    def final(self, text: str) -> None:
        """The closing line: shown even in quiet mode (not in JSON mode)."""
        if not self.json_mode:
            self._print(text)

    def _print(self, text: str) -> None:
        """Masked, and without control characters: text from hosts and git reaches this
        line, and an escape sequence in it must not drive the user's terminal."""
        with self._lock:
            print(printable(self.secrets.mask(text)), file=self.stream, flush=True)

    def step(self, host: str, step: str, result: str, seconds: float | None = None) -> None:
        took = f"  {seconds:.2f}s" if seconds is not None else ""
        self.line(f"  {host:<22} {step:<16} {result}{took}")

    def command(self, host: str, script: str) -> None:
        """With --verbose: every remote command as it runs, secrets masked."""
        if self.verbose:
            self._print(f"  {host:<22} $ " + script.replace("\n", "\n" + " " * 27))

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[object]], final: bool = False) -> None:
        cells = [[str(c) for c in headers]] + [[one_line(str(c)) for c in row] for row in rows]
        widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
        emit = self.final if final else self.line
        for index, row in enumerate(cells):
            emit("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
            if index == 0:
                emit("  " + "  ".join("-" * w for w in widths))

    def document(self, data: Any) -> None:
        """The one JSON document of ``--json`` mode (secrets masked)."""
        if self.json_mode:
            text = json.dumps(self.secrets.mask_data(data), indent=2, sort_keys=True, default=str)
            print(self.secrets.mask(text), file=self.stream, flush=True)

    def upload_progress(self, host: str, total: int) -> Callable[[int], None]:
        """A callback to feed with bytes sent; draws a live bar per host on a terminal."""
        if not self.interactive or total <= 0:
            return lambda sent: None
        with self._lock:
            if self._progress is None:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    DownloadColumn,
                    Progress,
                    TextColumn,
                    TimeRemainingColumn,
                    TransferSpeedColumn,
                )

                console = Console(file=self.stream, no_color=bool(os.environ.get("NO_COLOR")))
                self._progress = Progress(
                    TextColumn("  {task.description:<22}"),
                    BarColumn(),
                    DownloadColumn(),
                    TransferSpeedColumn(),
                    TimeRemainingColumn(),
                    console=console,
                    transient=True,
                )
                self._progress.start()
            task = self._progress.add_task(host, total=total)
        progress = self._progress
        return lambda sent: progress.update(task, advance=sent)

    def end_progress(self) -> None:
        with self._lock:
            if self._progress is not None:
                self._progress.stop()
                self._progress = None
