"""``--hosts`` and ``--roles``: narrowing a stage to some of its hosts (Capistrano's
HOSTS= and ROLES=), kept apart from the task table so the table stays one screen."""

from __future__ import annotations

import dataclasses

from .errors import ConfigError

__all__ = ["select_hosts"]


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def select_hosts(config, hosts: str | None, roles: str | None):
    """Narrow a stage to ``--hosts`` / ``--roles`` (as Capistrano's HOSTS= and ROLES=)."""
    wanted, wanted_roles = _split(hosts), set(_split(roles))
    if not wanted and not wanted_roles:
        return config
    known = {h.name for h in config.hosts} | {h.host for h in config.hosts}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        names = ", ".join(h.name for h in config.hosts)
        raise ConfigError(f"--hosts: {unknown[0]} is not a host of stage {config.stage} (hosts: {names})")
    chosen = tuple(
        h
        for h in config.hosts
        if (not wanted or h.name in wanted or h.host in wanted)
        and (not wanted_roles or wanted_roles & set(h.roles))
    )
    if not chosen:
        raise ConfigError(
            f"--roles: no host of stage {config.stage} has role(s) {', '.join(sorted(wanted_roles))}"
        )
    subset = len(chosen) < len(config.hosts)
    return dataclasses.replace(config, hosts=chosen, subset=subset, all_hosts=config.hosts if subset else ())
