"""Figures from samples: statistics, the metrics of the tables, and which Capistrano
setup is the one to compare with (the fastest that checks host keys, per command and RTT)."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from measure import Sample
from scenarios import CHANGED, FIRST, IDENTICAL, ROLLBACK
from workloads import human

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
