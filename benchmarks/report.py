"""Turn samples into the side-by-side table, the target checks, and benchmarks/results.md.

Every figure is a min and a median over runs; ratios are ours / Capistrano on medians.
Targets are judged on the same medians (peak RSS on the maximum), and reported as they
come out: a missed target is printed as missed.
"""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from measure import Sample
from scenarios import BIG, CHANGED, FIRST, HANDSHAKE, IDENTICAL, ROLLBACK
from workloads import Workload, describe, human

OURS, CAP = "ours", "Capistrano"
CHECKING = ("Capistrano", "Capistrano lean")  # the setups that verify host keys as ours does
SCENARIOS = (FIRST, IDENTICAL, CHANGED, ROLLBACK)


@dataclass(frozen=True)
class Stat:
    """min / median / max of one metric over runs (or over runs x hosts)."""

    min: float
    median: float
    max: float
    count: int


def stat(values: Sequence[float | None]) -> Stat | None:
    values = [v for v in values if v is not None]
    if not values:
        return None
    return Stat(min(values), statistics.median(values), max(values), len(values))


@dataclass(frozen=True)
class Metric:
    """A row of the table: how to pull values from samples, and how to print them."""

    label: str
    values: Callable[[list[Sample]], list[float]]
    show: Callable[[float], str]
    spread: bool = False  # print the max too when some run or host saw clearly more (> 1.1 x median)
    of_artifact: bool = False  # bytes: also say what share of the artifact the median is


def _per_host(field: str) -> Callable[[list[Sample]], list[float]]:
    return lambda samples: [getattr(c, field) for s in samples for c in s.per_host]


def _per_relay(field: str) -> Callable[[list[Sample]], list[float]]:
    return lambda samples: [getattr(t, field) for s in samples for t in s.traffic]


def _mean_rx(samples: list[Sample]) -> list[float]:
    return [sum(c.rx_bytes for c in s.per_host) / len(s.per_host) for s in samples if s.per_host]


def _cpu_per_host(samples: list[Sample]) -> list[float]:
    return [s.cpu / max(1, len(s.per_host)) for s in samples]


WALL = Metric("wall time", lambda ss: [s.wall for s in ss], lambda v: f"{v:.2f} s")
TRIPS = Metric(
    "round trips per host (relay turns, all)", _per_relay("turns"), lambda v: f"{v:g}", spread=True
)
METRICS = (
    WALL,
    Metric(
        "time to first SSH packet (relay)", lambda ss: [s.first_packet for s in ss], lambda v: f"{v:.3f} s"
    ),
    Metric("SSH connections per host", _per_host("logins"), lambda v: f"{v:g}", spread=True),
    Metric(
        "channel requests after login per host (sessions)",
        _per_host("sessions"),
        lambda v: f"{v:g}",
        spread=True,
    ),
    TRIPS,
    Metric("bytes client -> host per host (relay)", _per_relay("up"), human, spread=True),
    Metric("bytes host -> client per host (relay)", _per_relay("down"), human, spread=True),
    Metric("received per host (eth0, incl. SSH)", _mean_rx, human, spread=True, of_artifact=True),
    Metric("client CPU (user + sys) per host", _cpu_per_host, lambda v: f"{v:.2f} s"),
    Metric("peak RSS of the deploying process", lambda ss: [s.peak_rss_kib * 1024 for s in ss], human),
)
RSS = METRICS[-1]


def ok_samples(samples: Sequence[Sample], tool: str, op: str, rtt: float | None = 0) -> list[Sample]:
    """Successful samples of one tool and command (at one round-trip time; None: any)."""
    return [s for s in samples if s.tool == tool and s.op == op and s.ok and (rtt is None or s.rtt_ms == rtt)]


def ops_in_order(samples: Sequence[Sample]) -> list[str]:
    seen: list[str] = []
    for s in samples:
        if s.op not in seen:
            seen.append(s.op)
    return seen


def tools_in_order(samples: Sequence[Sample]) -> list[str]:
    seen: list[str] = []
    for s in samples:
        if s.tool not in seen and s.tool != OURS and s.bastion is None:
            seen.append(s.tool)
    return seen


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


def median_wall(samples: Sequence[Sample], tool: str, op: str, rtt: float) -> float | None:
    st = stat(WALL.values(ok_samples(samples, tool, op, rtt)))
    return None if st is None else st.median


def fastest(samples: Sequence[Sample], op: str, rtt: float, among: Sequence[str] | None) -> str | None:
    """The Capistrano setup with the lowest median wall time for ``op`` at ``rtt`` (of
    ``among``, or of every setup measured)."""
    found = [
        (m, tool)
        for tool in tools_in_order(samples)
        if (among is None or tool in among) and (m := median_wall(samples, tool, op, rtt)) is not None
    ]
    return min(found)[1] if found else None


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


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool | None  # None: not measured in this run


def median_of(
    samples: Sequence[Sample],
    tool: str,
    op: str,
    values: Callable[[list[Sample]], list[float]],
    rtt: float = 0,
) -> float | None:
    st = stat(values(ok_samples(samples, tool, op, rtt)))
    return None if st is None else st.median


def wall_target(samples: Sequence[Sample], op: str, fraction: float, rtt: float, name: str) -> Target:
    ref = fastest(samples, op, rtt, CHECKING)
    ours = median_wall(samples, OURS, op, rtt)
    cap = median_wall(samples, ref, op, rtt) if ref else None
    if ours is None or cap is None:
        return Target(name, "not measured", None)
    measured = f"ours {ours:.2f} s vs {ref} {cap:.2f} s: ratio {ours / cap:.2f} (needs <= {fraction:.2f})"
    return Target(name, measured, ours <= fraction * cap)


def after_login(samples: Sequence[Sample], op: str, rtt: float) -> float | None:
    """Round trips of ours after login: the command's relay turns less a bare login's."""
    total = median_of(samples, OURS, op, TRIPS.values, rtt)
    login = median_of(samples, OURS, HANDSHAKE, TRIPS.values, rtt)
    return None if total is None or login is None else total - login


def trips_target(samples: Sequence[Sample], op: str, most: int, rtt: float, name: str) -> Target:
    """Judged on channel requests (remote commands) after login; the relay's turns beyond
    a bare login's are shown next to them (each channel costs about two)."""
    sessions = median_of(samples, OURS, op, _per_host("sessions"), rtt)
    if sessions is None:
        return Target(name, "not measured", None)
    trips = after_login(samples, op, rtt)
    turns = "" if trips is None else f"; {trips:g} relay round trips beyond a bare login's at {rtt:g} ms"
    return Target(name, f"{sessions:g} channel requests{turns}", sessions <= most)


RATIO_TARGETS = ((FIRST, 0.5, 0.4), (CHANGED, 1 / 3, 0.25), (ROLLBACK, 0.2, 0.15))


def targets(samples: Sequence[Sample], workloads: dict[str, Workload], fleet: str) -> list[Target]:
    """The issue's targets, judged on this run's figures."""
    far = max({s.rtt_ms for s in samples})
    found = []
    for op, near_fraction, far_fraction in (*RATIO_TARGETS, (fleet, 0.5, 0.4)):
        found.append(wall_target(samples, op, near_fraction, 0, f"{op} at 0 ms <= {near_fraction:.2f}"))
        found.append(wall_target(samples, op, far_fraction, 50, f"{op} at 50 ms <= {far_fraction:.2f}"))
    found.append(trips_target(samples, ROLLBACK, 2, far, "rollback: at most 2 channels after login"))
    found.append(
        trips_target(samples, FIRST, 4, far, "first deploy (no hooks): at most 4 channels after login")
    )
    first = [
        s.first_packet
        for rtt in {s.rtt_ms for s in samples}
        for s in ok_samples(samples, OURS, ROLLBACK, rtt)
    ]
    st = stat(first)
    found.append(
        Target(
            "`invoke rollback` sends its first SSH packet within 0.2 s of process start (median, every RTT)",
            "not measured" if st is None else f"median {st.median:.3f} s (min {st.min:.3f} s)",
            None if st is None else st.median <= 0.2,
        )
    )
    found += byte_targets(samples, workloads)
    rss = [s.peak_rss_kib * 1024 for s in ok_samples(samples, OURS, BIG)]
    found.append(
        Target(
            "peak RSS for big < 150 MiB",
            "not measured" if not rss else f"max {human(max(rss))} over {len(rss)} runs",
            None if not rss else max(rss) < 150 * 1024 * 1024,
        )
    )
    ours = [s for s in samples if s.tool == OURS and s.ok and s.op != HANDSHAKE]
    counts = sorted({(c.logins, c.connections) for s in ours for c in s.per_host})
    found.append(
        Target(
            "exactly 1 SSH connection per host per command (ours, every command measured)",
            "not measured"
            if not counts
            else "(logins, TCP connections) per host seen: " + ", ".join(f"({a}, {b})" for a, b in counts),
            None if not counts else counts == [(1, 1)],
        )
    )
    return found


def byte_targets(samples: Sequence[Sample], workloads: dict[str, Workload]) -> list[Target]:
    """Issue 4's: a 1% redeploy receives <= 5% of the artifact, an identical one no payload (0 ms)."""
    changed = median_of(samples, OURS, CHANGED, _mean_rx)
    size = workloads["app-1pct"].tarball_bytes
    each_run = _mean_rx(ok_samples(samples, OURS, CHANGED))
    over = [v for v in each_run if v > 0.05 * size]
    found = [
        Target(
            "redeploy after a 1% change receives <= 5% of the artifact's bytes (judged on the median)",
            "not measured"
            if changed is None
            else f"median {human(changed)} = {100 * changed / size:.2f}% of {human(size)}; "
            f"{len(over)} of {len(each_run)} runs above 5% (max {human(max(each_run))})",
            None if changed is None else changed <= 0.05 * size,
        )
    ]
    same = median_of(samples, OURS, IDENTICAL, _mean_rx)
    rollback_rx = median_of(samples, OURS, ROLLBACK, _mean_rx)
    size = workloads["app"].tarball_bytes
    found.append(
        Target(
            "identical redeploy sends no payload (judged: receives < 1% of the artifact; "
            "rollback, which uploads nothing, is the reference)",
            "not measured"
            if same is None
            else f"{human(same)} = {100 * same / size:.2f}% of {human(size)} (ours' rollback: {human(rollback_rx or 0)})",
            None if same is None else same < 0.01 * size,
        )
    )
    return found


WHY_MISSED: dict[str, str] = {}  # filled in from the last full run: see results.md


def why_missed(found: Sequence[Target]) -> str:
    """The reason behind each missed target, so a miss is explained, not just reported."""
    lines = [
        f"- **{t.name}**: {text}"
        for t in found
        if t.met is False
        for key, text in WHY_MISSED.items()
        if t.name.startswith(key)
    ]
    missed = [t for t in found if t.met is False]
    if not missed:
        return "Every target was met."
    return "\n".join(lines) if lines else "See the notes below the tables."


def target_table(found: Sequence[Target]) -> str:
    lines = ["| target | measured | met? |", "|---|---|---|"]
    mark = {True: "met", False: "**missed**", None: "not measured"}
    lines += [f"| {t.name} | {t.measured} | {mark[t.met]} |" for t in found]
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
