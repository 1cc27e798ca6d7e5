"""The issue's targets, judged on one run's medians (peak RSS on the maximum)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from measure import Sample
from scenarios import BIG, CHANGED, FIRST, HANDSHAKE, IDENTICAL, ROLLBACK
from stats import CHECKING, OURS, TRIPS, _mean_rx, _per_host, fastest, median_wall, ok_samples, stat
from workloads import Workload, human


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
            "`sternway rollback` sends its first SSH packet within 0.2 s of process start (median, every RTT)",
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
