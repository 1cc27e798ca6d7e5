"""Jump hosts (bastions) as data: parse ``proxy_jump``, choose a host's route, describe it.

A route is the tuple of hops a host is reached through, outermost first (``a,b`` reaches
``a`` over TCP, ``b`` through ``a``, and the host through ``b``); ``()`` is a direct
connection. Everything here is pure; :mod:`deployer.bastion` opens the hops.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

NONE = "none"  # OpenSSH's word for "no jump host", also ours
_HOP = re.compile(
    r"^(?:(?P<user>[^@\s,/:]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>\d+))?$"
)


@dataclass(frozen=True)
class Hop:
    """One jump host: ``user@host:port`` (user and port may come from ~/.ssh/config)."""

    host: str
    port: int | None = None
    user: str | None = None

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port is not None else ""
        return f"{user}{self.host}{port}"


def parse(spec: str) -> tuple[Hop, ...]:
    """``user@host:port[,user@host:port...]`` as hops; ``none`` is no hop at all.

    Raises ValueError saying which hop is wrong and what a good one looks like."""
    spec = spec.strip()
    if spec.lower() == NONE:
        return ()
    hops = []
    for index, part in enumerate(spec.split(","), 1):
        found = _HOP.match(part.strip())
        port = int(found["port"]) if found and found["port"] else None
        if not found or (port is not None and not 1 <= port <= 65535):
            where = f"hop {index} " if "," in spec else ""
            raise ValueError(f"{where}{part.strip()!r} is not [user@]host[:port] (or none)")
        hops.append(Hop(found["host"].strip("[]"), port, found["user"]))
    return tuple(hops)


def choose(host_jump: str | None, stage_jump: str | None, ssh_config_jump: str | None) -> tuple[Hop, ...]:
    """A host's route: its own ``proxy_jump`` wins, then the stage's ``ssh.proxy_jump``,
    then ``ProxyJump`` from ~/.ssh/config; ``none`` at any level means direct, and stops
    the lower levels from applying."""
    for spec in (host_jump, stage_jump, ssh_config_jump):
        if spec is not None:
            return parse(spec)
    return ()


def describe(route: Iterable[Hop]) -> str:
    """``bastion deploy@127.0.0.1:2201`` or, chained, ``bastion a, then b``."""
    hops = [str(hop) for hop in route]
    return "bastion " + ", then ".join(hops) if hops else "direct"


def reach(route: tuple[Hop, ...]) -> str:
    """How an error names the hop that failed: ``via bastion deploy@127.0.0.1:2201``,
    or for a later hop ``via bastion b (through a)``."""
    *outer, last = route
    through = f" (through {', '.join(str(h) for h in outer)})" if outer else ""
    return f"via bastion {last}{through}"


def hop_report(routes: dict[str, tuple[Hop, ...]], reasons: dict[str, str | None]) -> dict[str, dict]:
    """What ``check`` says of each bastion: the hosts reached through it, and whether it
    answered. ``reasons`` holds why each host could not be connected (None: it was). A hop
    failed where a host's error blames it (``host web1 via bastion X: ...``); one that some
    host got through is ok; one behind a failed hop was never reached."""
    report: dict[str, dict] = {}
    for name, route in routes.items():
        reason = reasons.get(name)
        blamed = next(
            (d for d in range(1, len(route) + 1) if reason and reason.startswith(_blame(name, route[:d]))),
            None,
        )
        for depth in range(1, len(route) + 1):
            entry = report.setdefault(describe(route[:depth]), {"ok": False, "hosts": [], "problem": None})
            entry["hosts"].append(name)
            if blamed is None or blamed > depth:
                entry["ok"] = True
            elif blamed == depth and entry["problem"] is None:
                entry["problem"] = reason.removeprefix(_blame(name, route[:depth]))
    for entry in report.values():
        if entry["ok"]:
            entry["problem"] = None
        elif entry["problem"] is None:
            entry["problem"] = "not reached (a bastion before it failed)"
    return report


def _blame(name: str, route: tuple[Hop, ...]) -> str:
    """How a host's error starts when the last hop of ``route`` failed (see ssh.connect)."""
    return f"host {name} {reach(route)}: "
