"""Where deployer keeps state on the deploying machine: the user's cache folder."""

from __future__ import annotations

import os
from pathlib import Path


def cache_path(*parts: str) -> Path:
    """A path under ``$XDG_CACHE_HOME/deployer`` (default ``~/.cache/deployer``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "deployer", *parts)
