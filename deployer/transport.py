"""The effects layer: run a script on a host, over SSH or locally. Nothing else does I/O on hosts.

A :class:`Session` runs scripts on one host; :mod:`deployer.ssh` holds the SSH one,
:class:`LocalSession` runs them on this machine (``transport: local``), and
:class:`DryRunSession` records them instead (``--dry-run``).
"""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from .config import Config, Host
from .errors import CommandTimeout, Interrupted


@dataclass(frozen=True)
class Result:
    """What a remote command did."""

    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def output_tail(self, lines: int = 5) -> str:
        """The last lines of stderr (else stdout), joined for a one-line error message."""
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return " | ".join(text[-lines:]) or "no output"


Progress = Callable[[int], None]


def no_trace(script: str) -> None:
    pass


class Session(Protocol):
    """A connection to one host that runs scripts."""

    host: Host
    cancel: threading.Event
    trace: Callable[[str], None]

    def run(self, script: str, stdin: bytes | None = None, read_only: bool = False) -> Result: ...

    def stream(self, script: str, chunks: Iterable[bytes], progress: Progress | None = None) -> Result: ...

    def fetch(self, script: str, sink: BinaryIO) -> Result: ...

    def close(self) -> None: ...


def describe(script: str) -> str:
    """A short name for a script in messages: its last line (the command that matters)."""
    lines = [line.strip() for line in script.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "command"
    return f"`{last[:77] + '...' if len(last) > 80 else last}`"


class LocalSession:
    """Runs scripts with /bin/sh on this machine (``transport: local``)."""

    def __init__(self, host: Host, timeout: float) -> None:
        self.host = host
        self.timeout = timeout
        self.cancel = threading.Event()
        self.trace = no_trace

    def run(self, script: str, stdin: bytes | None = None, read_only: bool = False) -> Result:
        self.trace(script)
        try:
            proc = subprocess.run(
                ["/bin/sh", "-c", script], input=stdin or b"", capture_output=True, timeout=self.timeout
            )
        except subprocess.TimeoutExpired:
            raise CommandTimeout(
                f"host {self.host.name}: {describe(script)} ran past {self.timeout:g}s (ssh.command_timeout)"
            ) from None
        return Result(
            proc.returncode, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace")
        )

    def stream(self, script: str, chunks: Iterable[bytes], progress: Progress | None = None) -> Result:
        self.trace(script)
        proc = subprocess.Popen(
            ["/bin/sh", "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert proc.stdin is not None
        try:
            for chunk in chunks:
                if self.cancel.is_set():
                    proc.kill()
                    proc.wait()
                    raise Interrupted("interrupted during upload")
                proc.stdin.write(chunk)
                if progress:
                    progress(len(chunk))
        except BrokenPipeError:
            pass  # tar stopped reading: its exit code and stderr say why
        out, err = proc.communicate(timeout=self.timeout)
        return Result(proc.returncode, out.decode(errors="replace"), err.decode(errors="replace"))

    def fetch(self, script: str, sink: BinaryIO) -> Result:
        """Run a read-only script whose (binary) stdout goes to ``sink``."""
        self.trace(script)
        proc = subprocess.run(
            ["/bin/sh", "-c", script], stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.PIPE
        )
        return Result(proc.returncode, "", proc.stderr.decode(errors="replace"))

    def close(self) -> None:
        pass


class DryRunSession:
    """Wraps a real session for ``--dry-run``: read-only probes really run (the plan is
    made from real facts), every other command is recorded and reported as succeeded."""

    def __init__(self, real: Session, plan: list[str]) -> None:
        self.real = real
        self.host = real.host
        self.plan = plan
        self.cancel = real.cancel
        self.trace = no_trace

    def run(self, script: str, stdin: bytes | None = None, read_only: bool = False) -> Result:
        if read_only:
            return self.real.run(script, stdin, read_only=True)
        note = f"# with {len(stdin)} bytes on stdin\n" if stdin else ""
        self.plan.append(note + script)
        return Result(0, "", "")

    def stream(self, script: str, chunks: Iterable[bytes], progress: Progress | None = None) -> Result:
        self.plan.append("# with the upload streamed on stdin\n" + script)
        return Result(0, "", "")

    def fetch(self, script: str, sink: BinaryIO) -> Result:
        return self.real.fetch(script, sink)  # reading only

    def close(self) -> None:
        self.real.close()


def open_session(config: Config, host: Host) -> Session:
    """A session for ``host`` with the stage's transport."""
    if config.transport == "local":
        return LocalSession(host, config.ssh.command_timeout)
    from .ssh import connect  # Paramiko and Fabric load only when a host is contacted

    return connect(config, host)
