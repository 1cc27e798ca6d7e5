"""What is measured, in what order. Each run starts from a fresh, empty ``deploy_to``.

At each round-trip time (the relays' delay), one host, per run and per tool, one sequence
of four commands (each measured): first deploy of ``app``, redeploy of the identical
``app``, deploy of ``app-1pct``, rollback (back to ``app``); a first deploy of ``app`` to
every host; and one bare login per tool (the handshake's round trips). Then, at 0 ms, a
first deploy of ``big`` to one host and the fleet deploy through a bastion. The two tools take turns going first, so neither always runs
on a machine warmed (or loaded) by the other.

After every successful command the tree under ``current/`` is checked, on every host,
against the workload it should hold: a fast tool that deploys the wrong bytes fails.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from measure import Sample, run_command
from relay import Relays
from servers import BenchHost, parallel, remove, tree_digest
from tools import Tool
from workloads import Workload, human

FIRST = "first deploy, 1 host"
IDENTICAL = "redeploy, identical artifact"
CHANGED = "redeploy, 1% of files changed"
ROLLBACK = "rollback"
BIG = "big (1 GiB) first deploy, 1 host"
HANDSHAKE = "login only (handshake)"


def fleet_op(count: int) -> str:
    return f"first deploy, {count} hosts"


def bastion_op(count: int) -> str:
    return f"first deploy, {count} hosts behind one bastion"


@dataclass
class Bench:
    """Shared state of one benchmark run: hosts, workloads, and every sample so far."""

    hosts: list[BenchHost]
    workloads: dict[str, Workload]
    log_dir: Path
    timeout: float
    relays: Relays | None = None
    samples: list[Sample] = field(default_factory=list)

    def step(
        self,
        tool: Tool,
        action: str,
        op: str,
        run: int,
        hosts: Sequence[BenchHost],
        deploy_to: str,
        artifact: Workload | None,
        expected: Workload,
        bastion: BenchHost | None = None,
    ) -> Sample:
        """Configure (for a deploy), run and measure one command, then check what landed.
        With a ``bastion``, its counters are measured too."""
        if artifact is not None:
            tool.configure(hosts, deploy_to, artifact.tarball)
        sample = run_command(tool, action, op, run, hosts, self.log_dir, self.timeout, bastion, self.relays)
        if sample.ok and action != "handshake":
            sample.error = content_problem(hosts, f"{deploy_to}/current", expected, tool.metadata_files)
        self.samples.append(sample)
        progress(sample)
        return sample


def content_problem(
    hosts: Sequence[BenchHost], path: str, expected: Workload, excluded: Sequence[str]
) -> str | None:
    """None if every host's tree at ``path`` is exactly ``expected``; else which host differs."""

    def digest(host: BenchHost) -> str:
        try:
            return tree_digest(host, path, excluded)
        except RuntimeError as exc:
            return f"unreadable ({exc})"

    for host, found in zip(hosts, parallel(hosts, digest), strict=True):
        if found != expected.tree_digest:
            return (
                f"host 127.0.0.1:{host.port}: {path} does not hold {expected.name} (tree digest {found[:16]})"
            )
    return None


def single_host(bench: Bench, tool: Tool, run: int) -> None:
    """First deploy, identical redeploy, 1% redeploy, rollback: one host, one fresh deploy_to.

    A failed command ends the sequence: the later ones depend on it."""
    app, changed = bench.workloads["app"], bench.workloads["app-1pct"]
    hosts = bench.hosts[:1]
    deploy_to = f"/srv/{tool.slug}-single-{run}"
    plan = [
        (FIRST, "deploy", app, app),
        (IDENTICAL, "deploy", app, app),
        (CHANGED, "deploy", changed, changed),
        (ROLLBACK, "rollback", None, app),
    ]
    try:
        for op, action, artifact, expected in plan:
            if not bench.step(tool, action, op, run, hosts, deploy_to, artifact, expected).ok:
                break
    finally:
        remove(hosts, deploy_to)


def fleet(bench: Bench, tool: Tool, run: int, count: int) -> None:
    """First deploy of ``app`` to ``count`` hosts at once."""
    hosts = bench.hosts[:count]
    deploy_to = f"/srv/{tool.slug}-fleet-{run}"
    app = bench.workloads["app"]
    try:
        bench.step(tool, "deploy", fleet_op(count), run, hosts, deploy_to, app, app)
    finally:
        remove(hosts, deploy_to)


def behind_bastion(bench: Bench, tool: Tool, run: int, count: int, bastion: BenchHost) -> None:
    """First deploy of ``app`` to ``count`` hosts, every one reached through ``bastion``."""
    hosts = bench.hosts[:count]
    deploy_to = f"/srv/{tool.slug}-{run}"
    app = bench.workloads["app"]
    try:
        bench.step(tool, "deploy", bastion_op(count), run, hosts, deploy_to, app, app, bastion)
    finally:
        remove(hosts, deploy_to)


def big(bench: Bench, tool: Tool, run: int) -> None:
    """First deploy of the 1 GiB ``big`` workload to one host."""
    hosts = bench.hosts[:1]
    deploy_to = f"/srv/{tool.slug}-big-{run}"
    workload = bench.workloads["big"]
    try:
        bench.step(tool, "deploy", BIG, run, hosts, deploy_to, workload, workload)
    finally:
        remove(hosts, deploy_to)


def handshake(bench: Bench, tool: Tool, run: int) -> None:
    """One login and nothing else, through the relay: its round trips are the handshake's."""
    hosts = bench.hosts[:1]
    app = bench.workloads["app"]
    bench.step(tool, "handshake", HANDSHAKE, run, hosts, f"/srv/{tool.slug}-handshake", app, app)


def turns(tools: Sequence[Tool], run: int) -> list[Tool]:
    """Alternate which tool goes first, run by run."""
    return list(tools) if run % 2 else list(reversed(tools))


def progress(sample: Sample) -> None:
    """One line per command, so a long run shows where it is."""
    if sample.ok:
        logins = sorted({c.logins for c in sample.per_host})
        rx = sum(c.rx_bytes for c in sample.per_host) / max(1, len(sample.per_host))
        via = f"  bastion logins {sample.bastion.logins}" if sample.bastion else ""
        text = (
            f"{sample.wall:6.2f} s  logins/host {','.join(map(str, logins))}{via}  "
            f"received/host {human(rx)}  peak RSS {sample.peak_rss_kib / 1024:.0f} MiB"
        )
        if sample.traffic:
            trips = sum(t.turns for t in sample.traffic) / len(sample.traffic)
            text += f"  round trips/host {trips:.0f}  CPU {sample.cpu:.2f} s"
    else:
        text = f"FAILED: {sample.error}"
    print(f"  {sample.tool:<34} {sample.op:<34} {sample.rtt_ms:>3g} ms #{sample.run}  {text}", flush=True)
    sys.stdout.flush()
