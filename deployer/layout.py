"""Where things live under ``deploy_to`` on a host: pure path arithmetic, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePosixPath

RELEASE_METADATA = ".deployer-release.json"
MANIFEST_NAME = ".deployer-manifest.gz"  # per release: the artifact's files and their digests
MANIFEST_MAX = 128 * 1024 * 1024  # bytes: a manifest read back from a host may not expand past this
EXCLUDE_LIST = ".deployer-exclude"  # in a delta: paths not to reuse from the base release
TMP_LINK_PREFIX = "current.tmp-"
SNAPSHOT_NAME = re.compile(r"([1-9][0-9]{0,8})\.dump")  # .deployer/snapshots/<release>.dump


@dataclass(frozen=True)
class Layout:
    """Paths of one deployment directory."""

    deploy_to: str

    def _join(self, *parts: str) -> str:
        return str(PurePosixPath(self.deploy_to, *parts))

    @property
    def releases(self) -> str:
        return self._join("releases")

    def release(self, number: int) -> str:
        return self._join("releases", str(int(number)))

    def release_or_root(self, number: int | None) -> str:
        """Where a command about release ``number`` runs: its directory, else ``deploy_to``."""
        return self.release(number) if number is not None else self.deploy_to

    @property
    def current(self) -> str:
        return self._join("current")

    @property
    def shared(self) -> str:
        return self._join("shared")

    def shared_path(self, path: str) -> str:
        return self._join("shared", path)

    @property
    def state(self) -> str:
        """``.deployer/``: the lock and the release log."""
        return self._join(".deployer")

    def state_file(self, name: str) -> str:
        """A file of ours in ``.deployer/`` (the scheduled cleanup's script, units, log)."""
        return self._join(".deployer", name)

    @property
    def lock(self) -> str:
        return self._join(".deployer", "lock")

    @property
    def lock_info(self) -> str:
        return self._join(".deployer", "lock", "info")

    @property
    def log(self) -> str:
        return self._join(".deployer", "log.jsonl")

    @property
    def snapshots(self) -> str:
        """``.deployer/snapshots/``: database snapshots taken before migrations (mode 0700)."""
        return self._join(".deployer", "snapshots")

    def snapshot(self, number: int) -> str:
        """The snapshot taken before release ``number``'s migrations."""
        return self._join(".deployer", "snapshots", f"{int(number)}.dump")

    @property
    def before_restore(self) -> str:
        """The data as it was before the latest ``rollback --with-data`` (replaced by the next)."""
        return self._join(".deployer", "snapshots", "before-restore.dump")

    def metadata(self, number: int) -> str:
        return self._join("releases", str(int(number)), RELEASE_METADATA)

    def tmp_link(self, token: str) -> str:
        return self._join(TMP_LINK_PREFIX + token)


def current_target(number: int) -> str:
    """What ``current`` points to: relative, so the tree can be moved or mounted elsewhere."""
    return f"releases/{int(number)}"


def parse_current_target(target: str) -> int | None:
    """The release number ``current`` points to, or None for anything we did not write."""
    target = target.strip().rstrip("/")
    prefix = "releases/"
    if target.startswith(prefix) and target[len(prefix) :].isdigit():
        return _number(target[len(prefix) :])
    parts = PurePosixPath(target).parts
    if len(parts) >= 2 and parts[-2] == "releases" and parts[-1].isdigit():
        return _number(parts[-1])
    return None


def shared_link_target(path: str) -> str:
    """Relative link from ``releases/N/<path>`` back to ``shared/<path>``."""
    depth = len(PurePosixPath(path).parts) + 1
    return "../" * depth + "shared/" + str(PurePosixPath(path))


def _number(digits: str) -> int | None:
    """A release number we could have written (1 to 10**9), else None."""
    value = int(digits) if digits.isascii() else 0
    return value if 1 <= value <= 10**9 else None


def snapshot_release(name: str) -> int | None:
    """The release a file in ``.deployer/snapshots/`` belongs to (``12.dump``), or None."""
    match = SNAPSHOT_NAME.fullmatch(name)
    return int(match.group(1)) if match else None
