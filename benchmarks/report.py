"""Turn samples into the side-by-side table, the target checks, and benchmarks/results.md.

Every figure is a min and a median over runs; ratios are ours / Capistrano on medians.
Targets are judged on the same medians (peak RSS on the maximum), and reported as they
come out: a missed target is printed as missed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from measure import Sample
from scenarios import BIG, CHANGED, FIRST, IDENTICAL
from stats import (
    CAP,
    CHECKING,
    METRICS,
    OURS,
    RSS,
    SCENARIOS,
    WALL,
    Metric,
    Stat,
    _per_host,
    fastest,
    median_wall,
    ok_samples,
    ops_in_order,
    stat,
    tools_in_order,
)
from targets import target_table, targets, why_missed
from workloads import Workload, describe


def cell(st: Stat | None, metric: Metric) -> str:
    """``min / median``, plus the max where an outlier run would otherwise hide behind the median."""
    if st is None:
        return "n/a"
    text = f"{metric.show(st.min)} / {metric.show(st.median)}"
    return text + (f" (**max {metric.show(st.max)}**)" if metric.spread and st.max > 1.1 * st.median else "")


def ratio(ours: Stat | float | None, cap: Stat | float | None) -> str:
    a = ours.median if isinstance(ours, Stat) else ours
    b = cap.median if isinstance(cap, Stat) else cap
    if a is None or b is None or b == 0:
        return "n/a"
    return f"{a / b:.2f}"


def runs_note(samples: Sequence[Sample], tool: str, op: str, rtt: float) -> str:
    total = [s for s in samples if s.tool == tool and s.op == op and s.rtt_ms == rtt]
    good = [s for s in total if s.ok]
    if not total:
        return "not run"
    return f"{len(good)} runs" if len(good) == len(total) else f"{len(good)} of {len(total)} runs ok"


def table(samples: Sequence[Sample], artifact_sizes: dict[str, int], rtt: float) -> str:
    """Side by side at one round-trip time: ours against the fastest Capistrano setup that
    checks host keys, for that command."""
    lines = [
        "| command | metric | ours (min / median) | Capistrano (min / median) | ours / Capistrano |",
        "|---|---|---|---|---|",
    ]
    for op in ops_in_order([s for s in samples if s.bastion is None and s.rtt_ms == rtt]):
        cap_tool = fastest(samples, op, rtt, CHECKING) or CAP
        ours, cap = ok_samples(samples, OURS, op, rtt), ok_samples(samples, cap_tool, op, rtt)
        header = (
            f"**{op}** (ours: {runs_note(samples, OURS, op, rtt)}; {cap_tool}: "
            f"{runs_note(samples, cap_tool, op, rtt)})"
        )
        for index, metric in enumerate(METRICS):
            a, b = stat(metric.values(ours)), stat(metric.values(cap))
            if a is None and b is None:
                continue
            label = metric.label
            if metric.of_artifact and op in artifact_sizes and a is not None:
                label += f"; ours median = {100 * a.median / artifact_sizes[op]:.2f}% of the .tar.gz"
            first = header if index == 0 else ""
            lines.append(f"| {first} | {label} | {cell(a, metric)} | {cell(b, metric)} | {ratio(a, b)} |")
    return "\n".join(lines)


def headline(samples: Sequence[Sample], rtts: Sequence[float], fleet: str) -> str:
    """The issue's table: per command and round-trip time, the fastest Capistrano setup that
    checks host keys, ours, the ratio, and (for reference) the ratio to the fastest of all."""
    head = "| command |" + "".join(
        f" Capistrano at {r:g} ms | ours at {r:g} ms | ratio | vs fastest of all |" for r in rtts
    )
    lines = [head, "|---|" + "---|---|---|---|" * len(rtts)]
    for op in (*SCENARIOS, fleet):
        row = f"| {op} |"
        for rtt in rtts:
            ref, any_ = fastest(samples, op, rtt, CHECKING), fastest(samples, op, rtt, None)
            ours = median_wall(samples, OURS, op, rtt)
            cap = median_wall(samples, ref, op, rtt) if ref else None
            best = median_wall(samples, any_, op, rtt) if any_ else None
            shown = f"{cap:.2f} s" if cap is not None else "n/a"
            mine = f"{ours:.2f} s" if ours is not None else "n/a"
            row += f" {shown} | {mine} | **{ratio(ours, cap)}** | {ratio(ours, best)} |"
        lines.append(row)
    return "\n".join(lines)


def capistrano_setups(samples: Sequence[Sample], rtts: Sequence[float], fleet: str) -> str:
    """Median wall time of each Capistrano setup: which setting costs what."""
    names = tools_in_order(samples)
    lines = ["| command | RTT | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for op in (*SCENARIOS, fleet):
        for rtt in rtts:
            cells = [median_wall(samples, n, op, rtt) for n in names]
            if all(c is None for c in cells):
                continue
            shown = " | ".join("n/a" if c is None else f"{c:.2f} s" for c in cells)
            lines.append(f"| {op} | {rtt:g} ms | {shown} |")
    return "\n".join(lines)


def scaling(samples: Sequence[Sample], fleet: str, rtts: Sequence[float]) -> str:
    """N hosts / 1 host, on median wall time, per round-trip time."""
    lines = []
    for rtt in rtts:
        parts = []
        for tool in (OURS, *tools_in_order(samples)):
            many, one = median_wall(samples, tool, fleet, rtt), median_wall(samples, tool, FIRST, rtt)
            if many is not None and one is not None:
                parts.append(f"{tool} {many:.2f} s / {one:.2f} s = **{many / one:.2f}**")
        if parts:
            lines.append(f"- at {rtt:g} ms: " + "; ".join(parts))
    return "\n".join(lines) or "not measured"


def through_bastion(samples: Sequence[Sample], fleet: str) -> str:
    """Ours to the same hosts through one bastion: logins on the bastion per deploy (one,
    whatever the number of hosts, is the point), and the cost next to the direct deploy."""
    ops = ops_in_order([s for s in samples if s.bastion is not None])
    if not ops:
        return "not measured (--skip-bastion or --quick)"
    lines = ["| command | metric | ours (min / median) |", "|---|---|---|"]
    count = METRICS[2]
    for op in ops:
        ours = ok_samples(samples, OURS, op)
        rows = [
            ("wall time", stat([s.wall for s in ours]), WALL),
            ("logins on the bastion per deploy", stat([s.bastion.logins for s in ours]), count),
            ("TCP connections to the bastion per deploy", stat([s.bastion.connections for s in ours]), count),
            ("SSH logins per target host", stat(_per_host("logins")(ours)), count),
            ("remote commands per target host", stat(_per_host("sessions")(ours)), count),
            ("peak RSS of the deploying process", stat([s.peak_rss_kib * 1024 for s in ours]), RSS),
        ]
        header = f"**{op}** ({runs_note(samples, OURS, op, 0)})"
        lines += [
            f"| {header if i == 0 else ''} | {label} | {cell(st, metric)} |"
            for i, (label, st, metric) in enumerate(rows)
        ]
    direct = median_wall(samples, OURS, fleet, 0)
    lines.append("")
    lines.append(
        f"For comparison, ours' {fleet} without a bastion (through the relays at 0 ms): median {direct:.2f} s."
        if direct
        else ""
    )
    return "\n".join(lines)


def failures(samples: Sequence[Sample]) -> str:
    bad = [s for s in samples if not s.ok]
    if not bad:
        return (
            "None: every command exited 0 and left exactly the expected tree under `current/` on every host."
        )
    return "\n".join(
        f"- {s.tool}, {s.op}, {s.rtt_ms:g} ms, run {s.run}: `{s.error}` (full output: `{s.log}`)" for s in bad
    )


def machine() -> str:
    """nproc, memory, CPU model and kernel, as the report needs them."""
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    mem_kib = next((int(line.split()[1]) for line in meminfo if line.startswith("MemTotal")), 0)
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "unknown CPU"
    )
    return f"{os.cpu_count()} CPUs ({model}), {mem_kib / 1024 / 1024:.1f} GiB RAM, Linux {platform.release()}"


def source_fingerprint(folder: Path) -> str:
    """A short hash of every file under ``folder``: shows whether the code under test
    changed while the benchmark ran (it is installed editable, so each process reads it anew)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def other_load(own: set[str]) -> str:
    """The 1-minute load average and the containers this benchmark did not start: both
    compete for the same CPUs, so the report says how busy the machine was."""
    proc = subprocess.run(["docker", "ps", "-q", "--no-trunc"], capture_output=True, text=True)
    others = len([c for c in proc.stdout.split() if c not in own])
    return f"load average {os.getloadavg()[0]:.1f}, {others} other containers"


def side_by_side(samples: Sequence[Sample], sizes: dict[str, int], rtts: Sequence[float]) -> str:
    """One detailed table per round-trip time."""
    parts = []
    for rtt in rtts:
        parts.append(f"## Side by side at {rtt:g} ms round-trip time\n\n{table(samples, sizes, rtt)}")
    return "\n\n".join(parts)


def document(
    *,
    command: str,
    started: datetime,
    finished: datetime,
    versions: dict[str, str],
    workloads: dict[str, Workload],
    samples: Sequence[Sample],
    fleet: str,
    host_count: int,
    noise: tuple[str, str],
    source: tuple[str, str],
    notes: Sequence[str],
    rtts: Sequence[float],
) -> str:
    """The whole of results.md."""
    sizes = {
        FIRST: workloads["app"].tarball_bytes,
        IDENTICAL: workloads["app"].tarball_bytes,
        CHANGED: workloads["app-1pct"].tarball_bytes,
        fleet: workloads["app"].tarball_bytes,
    }
    if "big" in workloads:
        sizes[BIG] = workloads["big"].tarball_bytes
    workload_lines = "\n".join(f"- `{w.name}`: {describe(w)}" for w in workloads.values())
    version_text = ", ".join(f"{k} {v}" for k, v in versions.items())
    note_lines = "\n".join(f"- {n}" for n in notes)
    return f"""# Benchmark results: deployer vs Capistrano 3, at 0 to 50 ms round-trip time

- Date: {started.strftime("%Y-%m-%d %H:%M")} to {finished.strftime("%H:%M")} UTC ({(finished - started).total_seconds() / 60:.1f} min)
- Command: `{command}`
- Machine: {machine()}; shared and noisy. Before the run / at its end: {noise[0]} / {noise[1]} (the end's load average includes this benchmark's own work).
- Versions: {version_text}
- deployer/ sources (sha256 of all files) at start / end: {source[0]} / {source[1]}{" (**changed during the run**: later commands ran newer code)" if source[0] != source[1] else " (unchanged)"}
- Hosts: {host_count} sshd containers (Debian bookworm, the project's test image) on 127.0.0.1, each reached through a latency relay (benchmarks/relay.py) adding {", ".join(f"{r:g}" for r in rtts)} ms of round-trip time; `deploy_to` on a tmpfs (`/srv`, 3 GiB) in each.
- How it is measured: see `benchmarks/README.md`. Cells are `min / median` over runs; the ratio is ours / Capistrano on medians.

## Workloads (seeded, identical for both tools; both deploy the same .tar.gz)

{workload_lines}

## Ours against the fastest Capistrano that checks host keys (median wall time)

Ratio: ours / that Capistrano; "vs fastest of all" divides by the fastest setup measured,
host-key check or not.

{headline(samples, rtts, fleet)}

## Capistrano setups (median wall time): which setting costs what

{capistrano_setups(samples, rtts, fleet)}

## Targets

{target_table(targets(samples, workloads, fleet))}

### Why a missed target is missed

{why_missed(targets(samples, workloads, fleet))}

{side_by_side(samples, sizes, rtts)}

## Through a bastion (ours only, 0 ms)

{through_bastion(samples, fleet)}

## Scaling: {fleet} / first deploy, 1 host (median wall time)

{scaling(samples, fleet, rtts)}

## Failures

{failures(samples)}

## Notes

{note_lines}
"""
