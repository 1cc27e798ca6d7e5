"""Cheaper unpacking on the hosts: the artifact re-compressed once, locally, as zstd.

Every host of a fleet gunzips the same artifact; ``zstd -d`` does the same work for about a
quarter of the CPU, and the .tar.zst is smaller too. The transcode runs once per artifact
(cached by its sha256) with the ``zstd`` program of this machine, and only when a host can
unpack it; without a local ``zstd`` everything stays gzip, silently.

What a host unpacks is still the artifact the user built, byte for byte: the tar stream fed
to ``zstd`` is the artifact's own (gzip's CRC checked as it is read, the very bytes the
manifest and sha256 were computed from), and ``zstd`` writes a checksum of that stream into
the frame, which the host's ``zstd -d`` verifies before ``tar`` reports success.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import subprocess
import threading
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from .artifact import CHUNK, Artifact
from .config import Config
from .facts import HostFacts
from .localstate import cache_path, keep_newest

AUTO, GZIP, ZSTD = "auto", "gzip", "zstd"
LEVEL = 3  # zstd's default: 10.5 MB for the benchmark's 13 MB .tar.gz, 0.25 s for its 20 MiB
# ``auto`` transcodes an artifact not yet cached only for at least this many zstd hosts:
# measured (docs/scale.md), making the copy during the deploy loses at 1 and 2 hosts, wins at 4.
FLEET_MIN = 4
KEEP = 3  # copies kept (an artifact deployed to staging, then production, is made once)


def wanted(setting: str, local: bool, host: bool, zstd_hosts: int, cached: bool) -> bool:
    """Whether a host gets the zstd copy: ``setting`` is artifact.compression, ``local``
    whether this machine has zstd, ``host`` whether that host has it, ``zstd_hosts`` how
    many hosts of the deploy have it, ``cached`` whether the transcode exists already."""
    if setting == GZIP or not (local and host):
        return False
    return setting == ZSTD or cached or zstd_hosts >= FLEET_MIN


def cached_copy(sha256: str) -> Path:
    """Where the zstd copy of the artifact ``sha256`` is kept on this machine."""
    return cache_path("zstd", f"{sha256}.tar.zst")


def local_zstd() -> str | None:
    """This machine's ``zstd`` program, if any."""
    return shutil.which("zstd")


def transcode(art: Artifact, program: str) -> Path | None:
    """The artifact as a .tar.zst (made now unless cached), or None if that failed: the
    deploy then sends the artifact itself, as without zstd."""
    target = cached_copy(art.sha256)
    if target.is_file():
        return target
    partial = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with partial.open("wb") as sink:
            proc = subprocess.Popen(
                [program, "-q", f"-{LEVEL}", "--check", "-c", "-"], stdin=subprocess.PIPE, stdout=sink
            )
            try:
                _feed(art, proc.stdin)
            finally:
                proc.stdin.close()
                code = proc.wait()
        if code != 0:
            raise OSError(f"zstd exited {code}")
        partial.replace(target)
        _prune(target.parent)
        return target
    except (OSError, EOFError, zlib.error):
        with contextlib.suppress(OSError):
            partial.unlink()
        return None


def _feed(art: Artifact, stdin) -> None:
    """Write the artifact's tar stream (decompressed when gzip) to ``stdin``."""
    with art.path.open("rb") as raw:
        tar = gzip.GzipFile(fileobj=raw) if art.gzip else raw
        while chunk := tar.read(CHUNK):
            stdin.write(chunk)


def _prune(folder: Path, keep: int = KEEP) -> None:
    """Keep only the ``keep`` newest copies: each is about the artifact's size."""
    keep_newest(folder, "*.tar.zst", keep)


@dataclass
class ZstdCopy:
    """One deploy's choice of zstd, host by host, and the copy made at most once for all."""

    art: Artifact
    setting: str
    zstd_hosts: int
    program: str | None = field(default_factory=local_zstd)
    _path: Path | None = None
    _tried: bool = False
    suspect: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def for_host(self, fact: HostFacts) -> Path | None:
        """The .tar.zst to send this host, or None: send the artifact as it is."""
        cached = cached_copy(self.art.sha256).is_file()
        if not wanted(self.setting, self.program is not None, fact.zstd, self.zstd_hosts, cached):
            return None
        with self._lock:  # the first host to need it makes it; the others wait for it
            if not self._tried and self.program is not None:
                self._tried = True
                self._path = transcode(self.art, self.program)
            return self._path

    def discard(self) -> None:
        """Once every host is done: drop the cached copy if a host failed with it
        (``suspect``), so a damaged copy fails one deploy at most; the next makes it again."""
        if self.suspect and self._path is not None:
            self._path.unlink(missing_ok=True)


def zstd_copy(art: Artifact, config: Config, facts: dict[str, HostFacts], dry_run: bool) -> ZstdCopy | None:
    """The deploy's :class:`ZstdCopy`; none on a dry run (nothing is sent) or to a local
    folder (no host's CPU to save)."""
    if dry_run or config.transport == "local" or config.compression == GZIP:
        return None
    return ZstdCopy(art, config.compression, sum(1 for f in facts.values() if f.zstd))
