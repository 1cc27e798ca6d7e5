"""The local cache of artifact inspections: deploying the same built file again (to
another stage, after a rollback) skips re-reading and re-hashing it.

Keyed like git's index, by path, size, inode and both change times, so a rewrite of the
file misses the cache. Like git, it also knows the one case that key cannot see: a file
rewritten, at the same size, within the file system's timestamp tick of being
inspected keeps every stat field. An entry whose file changed that close to its
inspection ("racily clean", in git's words) is only trusted after the file's sha256 is
computed again and matches, and is then stored again as checked later.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from .artifact import CHUNK, Artifact, Entry, inspect
from .localstate import cache_path, keep_newest
from .untrusted import is_sha256

VERSION = "v3"  # v3: link chains, modes and option-like names are checked; older entries miss
FINE_TICK_NS = 100_000_000  # nanosecond timestamps (ext4, xfs, btrfs, tmpfs): coarse clock ticks are ms
COARSE_TICK_NS = 2_000_000_000  # whole-second timestamps (FAT keeps mtime to 2 s)
KEEP_BY_SHA256 = 200  # artifacts whose manifests are kept by sha256


def stat_of(path: Path) -> os.stat_result:
    """The file's stat (one place, so a test can play a file system with coarse timestamps)."""
    return path.stat()


def racy(st: os.stat_result, checked_ns: int) -> bool:
    """True when the file last changed too close to ``checked_ns`` (the moment its
    inspection began) for its stat to prove a later rewrite would show."""
    whole_seconds = st.st_mtime_ns % 10**9 == 0 and st.st_ctime_ns % 10**9 == 0
    tick = COARSE_TICK_NS if whole_seconds else FINE_TICK_NS
    return max(st.st_mtime_ns, st.st_ctime_ns) + tick >= checked_ns


def cache_file(path: Path, st: os.stat_result, max_unpacked: int) -> Path:
    """Where the inspection of this exact file (as ``st`` describes it) is remembered."""
    stamp = f"{st.st_size}|{st.st_ino}|{st.st_mtime_ns}|{st.st_ctime_ns}"
    key = f"{path.resolve()}|{stamp}|{max_unpacked}|{VERSION}"
    return cache_path("inspected", hashlib.sha256(key.encode()).hexdigest()[:32] + ".json.gz")


def inspect_cached(path: Path, max_unpacked: int, label: str) -> Artifact:
    """:func:`~deployer.artifact.inspect`, remembered per file."""
    st = stat_of(path)
    cache = cache_file(path, st, max_unpacked)
    data = _read(cache)
    try:
        if data is not None and racy(st, data["checked_ns"]):
            checked = time.time_ns()
            if _sha256(path) != data["sha256"]:
                raise ValueError("rewritten within one timestamp tick")
            _write(cache, {**data, "checked_ns": checked})
        if data is not None:
            return remember(_artifact(path, data))  # inspected before the sha256 index existed
    except (KeyError, TypeError, ValueError):
        pass
    checked = time.time_ns()
    found = inspect(path, max_unpacked, label)
    _write(cache, _record(found, checked))
    return remember(found)


def remember(found: Artifact) -> Artifact:
    """Keep the artifact's inspection under its sha256 (once), for later deltas against
    the releases made from it."""
    path = by_sha256(found.sha256)
    if not path.exists():
        _write(path, _record(found, time.time_ns()))
        _prune(path.parent)
    return found


def _prune(folder: Path, keep: int = KEEP_BY_SHA256) -> None:
    """Only the newest records stay: a delta's base is one of a stage's last releases."""
    keep_newest(folder, "*.json.gz", keep)


def by_sha256(sha256: str) -> Path:
    """Where the inspection of any artifact with this sha256 is remembered, whatever its
    file became since: the manifest of a release on a host, by the sha256 it was made from."""
    return cache_path("by-sha256", f"{sha256}.json.gz")


def known_manifest(sha256: str | None) -> dict[str, Entry] | None:
    """The manifest of an artifact this machine inspected before, by its sha256: a delta
    against a release built from it then needs nothing read back from the host. None if
    unknown (or the record is unreadable)."""
    if sha256 is None or not is_sha256(sha256):
        return None
    data = _read(by_sha256(sha256))
    try:
        if data is None or data["sha256"] != sha256:
            return None
        return {str(p): Entry(*e) for p, e in data["manifest"].items()}
    except (KeyError, TypeError, AttributeError):
        return None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read(cache: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(gzip.decompress(cache.read_bytes()))
        if not isinstance(data, dict) or not isinstance(data.get("checked_ns"), int):
            return None
        return data
    except (OSError, ValueError, EOFError):
        return None


def _artifact(path: Path, data: dict[str, Any]) -> Artifact:
    return Artifact(
        path,
        data["gzip"],
        data["sha256"],
        data["size"],
        data["unpacked"],
        data["members"],
        manifest={p: Entry(*e) for p, e in data["manifest"].items()},
        has_hardlinks=data["hardlinks"],
        sizes=data["sizes"],
    )


def _record(found: Artifact, checked_ns: int) -> dict[str, Any]:
    return {
        "checked_ns": checked_ns,
        "gzip": found.gzip,
        "sha256": found.sha256,
        "size": found.size,
        "unpacked": found.unpacked_size,
        "members": found.members,
        "hardlinks": found.has_hardlinks,
        "manifest": {p: [e.kind, e.digest, e.mode] for p, e in found.manifest.items()},
        "sizes": found.sizes,
    }


def _write(cache: Path, data: dict[str, Any]) -> None:
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(gzip.compress(json.dumps(data).encode(), compresslevel=1))
        partial.replace(cache)
    except OSError:
        pass  # a cache we cannot write is only slower
