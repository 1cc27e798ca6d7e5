"""Run one deploy or rollback as a user would (a fresh process) and measure it.

* wall time: monotonic clock around the process, start-up included;
* peak RSS and client CPU: ``/usr/bin/time -f "%M %U %S"`` (the largest resident set of
  the process or any child it waited for, in KiB; user and system CPU seconds of the
  deploying process and the children it waited for);
* through the latency relay (relay.py), per host: bytes each way, round trips, and the
  time of the first SSH packet the client sent;
* per host, from two snapshots of the server's counters (see servers.py): SSH logins,
  TCP connections, remote commands, bytes received on eth0;
* time to first SSH connection: from just before the process is spawned to the earliest
  "Connection from" line any host logged (Docker stamps each line as sshd writes it;
  with VERBOSE logging sshd writes it right after accept(), before its banner).
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from relay import Relays, Traffic
from servers import BenchHost, Counters, snapshot
from tools import Tool

TIME_BINARY = "/usr/bin/time"


@dataclass
class Sample:
    """One measured command. ``error`` is set when the tool failed or deployed wrong content."""

    tool: str
    op: str
    run: int
    rtt_ms: float = 0.0
    wall: float = 0.0
    peak_rss_kib: int = 0
    cpu: float = 0.0  # user + system seconds of the deploying process (and children it waited for)
    per_host: list[Counters] = field(default_factory=list)
    traffic: list[Traffic] = field(default_factory=list)  # per host, seen by its relay
    first_connection: float | None = None
    first_packet: float | None = None  # the first byte any client sent through a relay
    bastion: Counters | None = None  # what the bastion saw, for a deploy through one
    error: str | None = None
    log: Path | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def require_time_binary() -> None:
    """GNU time gives peak RSS without touching the tools; say how to get it if missing."""
    if not os.access(TIME_BINARY, os.X_OK):
        raise SystemExit(f"{TIME_BINARY} is missing: apt-get install -y time")


def run_command(
    tool: Tool,
    action: str,
    op: str,
    run: int,
    hosts: Sequence[BenchHost],
    log_dir: Path,
    timeout: float,
    bastion: BenchHost | None = None,
    relays: Relays | None = None,
) -> Sample:
    """Run ``tool``'s ``action`` once and return what it cost. Never raises for a tool failure."""
    rtt = relays.delay * 2000 if relays else 0.0
    name = f"{tool.slug}-{slug(op)}-{rtt:g}ms-{run}.log"
    sample = Sample(tool.name, op, run, rtt_ms=rtt, log=log_dir / name)
    tool.settle()
    watched = [*hosts, bastion] if bastion else list(hosts)
    before = snapshot(watched)
    relayed = [h for h in hosts if relays is not None and h.relay_port]
    traffic_before = [relays.traffic(h.port) for h in relayed] if relays else []
    with tempfile.NamedTemporaryFile(prefix="bench-rss-", suffix=".txt") as rss, sample.log.open("w") as log:
        argv = [TIME_BINARY, "-f", "%M %U %S", "-o", rss.name, *tool.command(action)]
        started_epoch = time.time()
        started = time.monotonic()
        code = run_process(argv, tool.project, log, timeout, tool.env())
        sample.wall = time.monotonic() - started
        tool.finished()
        sample.peak_rss_kib, sample.cpu = read_rss(Path(rss.name))
    if relays is not None:
        sample.traffic = [
            relays.traffic(h.port).minus(b) for h, b in zip(relayed, traffic_before, strict=True)
        ]
        packets = [t for c in sample.traffic for t in c.first_bytes if t >= started_epoch]
        sample.first_packet = min(packets) - started_epoch if packets else None
    after = snapshot(watched)
    seen = [a.minus(b) for a, b in zip(after, before, strict=True)]
    sample.per_host = seen[: len(hosts)]
    sample.bastion = seen[len(hosts)] if bastion else None
    firsts = [t for c in seen for t in c.connection_times if t >= started_epoch]
    sample.first_connection = min(firsts) - started_epoch if firsts else None
    if code != 0:
        sample.error = f"`{' '.join(tool.command(action))}` exited {code}: {tail(sample.log)}"
    return sample


def run_process(
    argv: list[str], cwd: Path, log: IO[str], timeout: float, env: dict[str, str] | None = None
) -> int | str:
    """Run to completion; on timeout kill the whole process group we started (the tool,
    not only GNU time), so no orphan keeps deploying into the next run."""
    proc = subprocess.Popen(
        argv, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env
    )
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"timeout after {timeout:g}s"


def read_rss(path: Path) -> tuple[int, float]:
    """The KiB and CPU seconds GNU time wrote (its last line; earlier lines may note a signal)."""
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    try:
        rss, user, system = lines[-1].split()
        return int(rss), float(user) + float(system)
    except (IndexError, ValueError):
        return 0, 0.0


def tail(log: Path, lines: int = 6) -> str:
    """The end of a tool's output, joined on one line, for the report."""
    text = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return " | ".join(text[-lines:]) or "no output"


def slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
