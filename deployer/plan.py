"""Pure decisions from config and facts: release numbers, rollback targets, what to clean.

Nothing here does I/O, so every rule is unit-tested on plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

from . import program_name, releaselog, untrusted
from .config import Hook, Host
from .errors import DeployFailed
from .facts import COMPLETE, PARTIAL, HostFacts
from .layout import current_target


def next_release(facts: Mapping[str, HostFacts]) -> int:
    """One more than the highest number on any host or in any host's log: never reused."""
    highest = 0
    for fact in facts.values():
        highest = max(highest, max(fact.releases, default=0), releaselog.highest_release(fact.log))
    if highest >= untrusted.MAX_RELEASE:
        raise DeployFailed(
            f"a host holds or logs release {highest}, past the largest release number "
            f"({untrusted.MAX_RELEASE}); remove it by hand ({program_name()} releases shows where)"
        )
    return highest + 1


def merged_log(facts: Mapping[str, HostFacts]) -> list[releaselog.Event]:
    return releaselog.merge(f.log for f in facts.values())


def rollback_candidates(events: list[releaselog.Event], current: int | None) -> list[int]:
    """Releases that were live before, newest first, minus the current one and bad ones.

    Bad means failed or rolled back from: deploy 1, 2, 3; rollback (to 2); deploy 4;
    rollback goes to 2, not 3.
    """
    status = releaselog.statuses(events)
    seen: set[int] = set()
    order: list[int] = []
    for event in reversed(events):
        number = event.release
        if event.status != releaselog.ACTIVE or number is None or number in seen:
            continue
        seen.add(number)
        if number == current or status.get(number) in releaselog.BAD_STATUSES:
            continue
        if current is not None and number > current:
            continue  # rolling back never moves forward
        order.append(number)
    return order


def current_release(facts: Mapping[str, HostFacts]) -> int | None:
    """The release ``current`` points to, when every host agrees; else the highest one."""
    values = {f.current for f in facts.values() if f.current is not None}
    return max(values) if values else None


def choose_rollback(facts: Mapping[str, HostFacts], to: int | None) -> int:
    """The release to roll back to; raises naming hosts when it is not everywhere."""
    if to is not None:
        target = to
    else:
        events = merged_log(facts)
        current = current_release(facts)
        candidates = rollback_candidates(events, current)
        if not candidates:
            # No log (or no usable entry): fall back to the newest complete release below current.
            everywhere = set.intersection(*(f.complete for f in facts.values())) if facts else set()
            older = sorted((n for n in everywhere if current is None or n < current), reverse=True)
            bad = releaselog.statuses(events)
            candidates = [n for n in older if bad.get(n) not in releaselog.BAD_STATUSES]
        on_some = [n for n in candidates if any(n in f.complete for f in facts.values())]
        if not on_some:
            raise DeployFailed(
                "rollback: no earlier good release is kept on the hosts to roll back to "
                f"(see {program_name()} releases; name one with --to=N)"
            )
        target = on_some[0]
    missing = sorted(name for name, f in facts.items() if target not in f.complete)
    if missing:
        raise DeployFailed(
            f"rollback: release {target} is not on host(s) {', '.join(missing)}; nothing was changed"
        )
    return target


def after_switch(
    facts: Mapping[str, HostFacts], number: int, events: Iterable[releaselog.Event]
) -> dict[str, HostFacts]:
    """Each host's facts once release ``number`` is complete and current there and
    ``events`` are logged: what a probe would read right after a deploy that held the lock
    throughout, so cleanup can be decided without reading the hosts again."""
    events = list(events)
    return {
        name: replace(
            f,
            exists=True,
            current=number,
            current_raw=current_target(number),
            current_ok=True,
            releases={**f.releases, number: COMPLETE},
            log=[*f.log, *events],
        )
        for name, f in facts.items()
    }


def cleanup_victims(
    fact: HostFacts,
    keep: int,
    protected: Iterable[int],
    statuses: Mapping[int, str],
) -> list[int]:
    """Which release directories to remove on one host.

    Failed and half-built releases go first; then all but the newest ``keep`` good ones.
    Protected releases (current, the rollback target, anything newer than current that is
    in flight) are never returned, and neither is anything that is not a numbered release.
    """
    keep_set = set(protected)
    if fact.current is not None:
        keep_set.add(fact.current)
    broken = {
        n for n, state in fact.releases.items() if state == PARTIAL or statuses.get(n) == releaselog.FAILED
    }
    good = sorted((n for n in fact.releases if n not in broken), reverse=True)
    survivors = set(good[:keep])
    return sorted(n for n in fact.releases if n not in survivors and n not in keep_set)


def hook_hosts(hook: Hook, hosts: Iterable[Host]) -> list[Host]:
    """Hosts a hook runs on: filtered by roles; ``once`` picks the first ``db`` host, else the first."""
    candidates = [h for h in hosts if not hook.roles or set(hook.roles) & set(h.roles)]
    if not hook.once or not candidates:
        return candidates
    for host in candidates:
        if "db" in host.roles:
            return [host]
    return candidates[:1]


def batch_size(size: int | str, total: int) -> int:
    """Hosts per batch: a count, or a share of all hosts (rounded up, at least 1)."""
    if isinstance(size, str) and size.endswith("%"):
        return max(1, -(-total * int(size[:-1]) // 100))
    return max(1, int(size))


def batches(names: list[str], canary: int, size: int | str) -> list[list[str]]:
    """The order hosts are switched in: the canary hosts alone, then batches of ``size``."""
    first = names[: min(canary, len(names))]
    rest = names[len(first) :]
    step = batch_size(size, len(names))
    return ([first] if first else []) + [rest[i : i + step] for i in range(0, len(rest), step)]
