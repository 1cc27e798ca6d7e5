"""Read-only probes: a shell command and a pure parser for its output.

One probe reads everything a deploy, rollback or cleanup decides from (releases,
``current``, the lock, leftovers, the log) in a single round trip per host.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from . import releaselog
from .layout import RELEASE_METADATA, TMP_LINK_PREFIX, Layout, parse_current_target
from .shell import quote

COMPLETE, PARTIAL = "complete", "partial"
LOG_MARKER = "--- deployer log ---"


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
    log: list[releaselog.Event] = field(default_factory=list)

    @property
    def complete(self) -> set[int]:
        return {n for n, state in self.releases.items() if state == COMPLETE}


def probe_command(layout: Layout) -> str:
    """Print the state of ``deploy_to`` as tagged lines; changes nothing."""
    d = quote(layout.deploy_to)
    meta = quote(RELEASE_METADATA)
    return "\n".join(
        [
            f"D={d}",
            'if [ -d "$D" ]; then echo "exists yes"; else echo "exists no"; fi',
            'printf "current %s\\n" "$(readlink "$D/current" 2>/dev/null)"',
            'if [ -e "$D/current" ]; then echo "current_ok yes"; fi',
            'for r in "$D"/releases/* "$D"/releases/.[!.]*; do',
            '  [ -e "$r" ] || [ -L "$r" ] || continue',
            f'  if [ -d "$r" ] && [ ! -L "$r" ] && [ -f "$r/"{meta} ]; then s={COMPLETE}; else s={PARTIAL}; fi',
            '  printf "release %s %s\\n" "$s" "${r##*/}"',
            "done",
            f'for t in "$D"/{TMP_LINK_PREFIX}*; do [ -L "$t" ] && printf "tmplink %s\\n" "${{t##*/}}"; done',
            'if [ -d "$D/.deployer/lock" ]; then printf "lock %s\\n" "$(head -c 4000 "$D/.deployer/lock/info" 2>/dev/null | tr "\\n" " ")"; fi',
            f"echo {quote(LOG_MARKER)}",
            'cat "$D/.deployer/log.jsonl" 2>/dev/null || true',
        ]
    )


def parse_probe(output: str) -> HostFacts:
    """Turn the probe's output into :class:`HostFacts`."""
    facts = HostFacts()
    head, _, log_text = output.partition(LOG_MARKER + "\n")
    for line in head.splitlines():
        tag, _, rest = line.partition(" ")
        if tag == "exists":
            facts.exists = rest == "yes"
        elif tag == "current":
            facts.current_raw = rest
            facts.current = parse_current_target(rest) if rest else None
        elif tag == "current_ok":
            facts.current_ok = True
        elif tag == "release":
            state, _, name = rest.partition(" ")
            if name.isdigit() and str(int(name)) == name:
                facts.releases[int(name)] = state
            else:
                facts.foreign.append(name)
        elif tag == "tmplink":
            facts.tmp_links.append(rest)
        elif tag == "lock":
            facts.lock = parse_lock_info(rest)
    facts.log = releaselog.parse(log_text)
    return facts


def parse_lock_info(text: str) -> dict:
    """The lock's holder record; a lock whose info is unreadable still counts as held."""
    try:
        info = json.loads(text)
    except ValueError:
        return {"holder": "unknown (unreadable lock info)"}
    return info if isinstance(info, dict) else {"holder": "unknown"}
