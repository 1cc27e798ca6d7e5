"""This machine: who deploys from it, and what it remembers between runs.

State lives in the user's cache folder (``$XDG_CACHE_HOME/deployer``): cached artifact
inspections and the tokens of locks a run had to leave on hosts that dropped out.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
from pathlib import Path


def whoami() -> str:
    """Who deploys: ``DEPLOYER_USER`` if set, else user@machine."""
    return os.environ.get("DEPLOYER_USER") or f"{getpass.getuser()}@{socket.gethostname()}"


def cache_path(*parts: str) -> Path:
    """A path under ``$XDG_CACHE_HOME/deployer`` (default ``~/.cache/deployer``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "deployer", *parts)


def keep_newest(folder: Path, pattern: str, keep: int) -> None:
    """Remove all but the ``keep`` newest files matching ``pattern`` in a cache folder
    (another deploy pruning at the same time is no error: a cache is only ever slower)."""
    with contextlib.suppress(OSError):
        files = sorted(folder.glob(pattern), key=lambda p: p.stat().st_mtime_ns, reverse=True)
        for old in files[keep:]:
            old.unlink(missing_ok=True)


class LeftLocks:
    """Locks this machine could not give back: their tokens (random, so unique) with the
    deploy_to and host, in a small JSON file in the user's cache folder. Keyed by token,
    not by address, so a host that comes back on another address is still recognised."""

    def __init__(self) -> None:
        self.path = cache_path("left-locks.json")

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save(self, data: dict[str, str]) -> None:
        with contextlib.suppress(OSError):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(data, indent=1, sort_keys=True))

    def remember(self, deploy_to: str, host: str, token: str) -> None:
        data = self._load()
        data[token] = f"{deploy_to} on {host}"
        self._save(data)

    def contains(self, deploy_to: str, token: str) -> bool:
        return str(self._load().get(token, "")).startswith(f"{deploy_to} on ")

    def forget(self, token: str) -> None:
        data = self._load()
        if data.pop(token, None) is not None:
            self._save(data)
