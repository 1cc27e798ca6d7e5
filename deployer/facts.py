"""Read-only probes, parsed: what a host's deployment directory holds, as plain values.

The probe script is built by :func:`deployer.commands.probe`; it reads everything a
deploy, rollback or cleanup decides from (releases, ``current``, the lock, leftovers, the
log) in a single round trip per host.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import releaselog, untrusted
from .layout import parse_current_target, snapshot_release

COMPLETE, PARTIAL = "complete", "partial"
LOG_MARKER = "--- deployer log ---"
CHECK_MARKER = "--- end check ---"


@dataclass
class HostFacts:
    """What one host's deployment directory holds right now."""

    exists: bool = False
    current_raw: str = ""
    current: int | None = None
    current_ok: bool = False
    releases: dict[int, str] = field(default_factory=dict)
    foreign: list[str] = field(default_factory=list)
    tmp_links: list[str] = field(default_factory=list)
    lock: dict | None = None
    maintenance: str | None = None  # the raw record while maintenance is on (untrusted)
    snapshots: dict[int, int] = field(default_factory=dict)  # release -> bytes of its snapshot
    log: list[releaselog.Event] = field(default_factory=list)
    zstd: bool = False  # ``zstd`` is on the PATH: the host can unpack a .tar.zst (deployer.transcode)

    @property
    def complete(self) -> set[int]:
        return {n for n, state in self.releases.items() if state == COMPLETE}


def parse_probe(output: str) -> HostFacts:
    """Turn the output of :func:`deployer.commands.probe` into :class:`HostFacts`."""
    facts = HostFacts()
    head, _, log_text = output.partition(LOG_MARKER + "\n")
    for line in head.split("\n"):  # only \n: splitlines() also breaks on \r, \x1c, U+2028...
        tag, _, rest = line.partition(" ")
        if tag == "exists":
            facts.exists = rest == "yes"
        elif tag == "current":
            facts.current_raw = untrusted.decode_exact(rest)  # exact: undo writes it back
            facts.current = parse_current_target(rest) if rest else None
        elif tag == "current_ok":
            facts.current_ok = True
        elif tag == "release":
            state, _, name = rest.partition(" ")
            if name.isdigit() and str(int(name)) == name and untrusted.release_number(int(name)):
                facts.releases[int(name)] = state
            else:
                facts.foreign.append(untrusted.decode_name(name))
        elif tag == "tmplink" and not rest.startswith(untrusted.HEX_PREFIX):
            facts.tmp_links.append(rest)  # an odd name is not one of ours: never removed
        elif tag == "lock":
            facts.lock = parse_lock_info(rest)
        elif tag == "maintenance":
            facts.maintenance = rest
        elif tag == "zstd":
            facts.zstd = rest == "yes"
        elif tag == "snapshot":
            _snapshot(facts, rest)
    facts.log = releaselog.parse(log_text)
    return facts


def _snapshot(facts: HostFacts, rest: str) -> None:
    """``snapshot <release>.dump <bytes>``: only names and sizes we could have written count."""
    name, _, size = rest.partition(" ")
    number = untrusted.release_number(snapshot_release(name))
    if number is not None and size.isdigit() and len(size) < 16:
        facts.snapshots[number] = int(size)


def parse_lock_info(raw: str) -> dict:
    """The lock's holder record, with only the fields that have their documented type
    (``holder``, ``command``, ``token``: strings; ``pid``: integer; ``since``: a finite
    number). A lock whose info is unreadable still counts as held."""
    info = untrusted.json_object(raw)
    if info is None:
        return {"holder": "unknown (unreadable lock info)"}
    kept: dict = {k: untrusted.text(info.get(k), 200) for k in ("holder", "command", "token")}
    kept["pid"] = untrusted.integer(info.get("pid"))
    kept["since"] = untrusted.number(info.get("since"))
    kept = {k: v for k, v in kept.items() if v is not None}
    kept.setdefault("holder", "unknown")
    return kept
