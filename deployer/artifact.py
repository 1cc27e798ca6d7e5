"""Build, pack, check and stream the artifact. Runs only on this machine.

An artifact is checked whole before any host is touched: it must exist and be non-empty,
and no member may escape the release (absolute paths, ``..``, links pointing outside,
device files) or expand past ``artifact.max_unpacked_size``. The file is streamed in
chunks, never read into memory whole.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from . import tree
from .config import Config
from .errors import ArtifactError
from .layout import EXCLUDE_LIST, MANIFEST_MAX
from .members import LinkTable, member_problem, safe_mode

__all__ = ["Artifact", "Entry", "inspect", "member_problem", "pack_directory", "prepare"]

CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class Entry:
    """One path of an artifact: kind (f file, d dir, l symlink, h hard link), content
    digest (sha256 prefix of the bytes, or of the link target), and mode."""

    kind: str
    digest: str
    mode: int


def clean_name(name: str) -> str:
    """A member name as a path relative to the release ('' for the root itself)."""
    return "/".join(p for p in name.split("/") if p not in ("", "."))


def format_manifest(manifest: dict[str, Entry]) -> bytes:
    lines = (f"{e.kind} {e.digest} {e.mode:o} {path}\n" for path, e in sorted(manifest.items()))
    return "".join(lines).encode("utf-8")


MANIFEST_LINE = re.compile(r"([fdlh]) (\S+) ([0-7]{1,6}) (.+)")


def parse_manifest(data: bytes) -> dict[str, Entry]:
    """Read a stored manifest; lines that do not parse are dropped (they just won't be
    reused), and one larger than MANIFEST_MAX is no manifest of ours: empty."""
    manifest: dict[str, Entry] = {}
    if len(data) > MANIFEST_MAX:
        return manifest
    for line in data.decode("utf-8", errors="replace").split("\n"):
        match = MANIFEST_LINE.fullmatch(line)
        if match:
            kind, digest, mode, path = match.groups()
            manifest[path] = Entry(kind, digest, int(mode, 8))
    return manifest


def gunzip_manifest(data: bytes) -> bytes:
    """Decompress a stored manifest read from a host, refusing (ValueError) past
    MANIFEST_MAX bytes: a gzip bomb costs at most that much memory, never all of it."""
    inflate = zlib.decompressobj(wbits=31)  # gzip framing
    out = inflate.decompress(data, MANIFEST_MAX + 1)
    if len(out) > MANIFEST_MAX:
        raise ValueError(f"manifest expands past {MANIFEST_MAX} bytes")
    if not inflate.eof:
        raise ValueError("truncated manifest")
    return out


def diff_manifest(base: dict[str, Entry], new: dict[str, Entry]) -> tuple[set[str], list[str]] | None:
    """What a release built from ``base`` needs: (paths to send, paths to remove).

    Returns None when a delta is not worth it or not safe: a path changes kind (file to
    directory...), or hard links are involved (their targets must travel with them).
    """
    if any(e.kind == "h" for e in new.values()) or any(e.kind == "h" for e in base.values()):
        return None
    send: set[str] = set()
    for path, entry in new.items():
        old = base.get(path)
        if old is not None and old.kind != entry.kind:
            return None
        if old != entry:
            send.add(path)
    removed = sorted((p for p in base if p not in new), reverse=True)
    return send, removed


@dataclass(frozen=True)
class Artifact:
    """A checked artifact file ready to stream to hosts."""

    path: Path
    gzip: bool
    sha256: str
    size: int
    unpacked_size: int
    members: int
    temporary: bool = False
    manifest: dict[str, Entry] = field(default_factory=dict, compare=False, repr=False)
    has_hardlinks: bool = False
    temporary_dir: Path | None = None
    sizes: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    vouched: bool = True  # False: a promoted tree only its source host vouched for (--unverified)
    source: str = ""  # for a directory: which files were packed (deployer.tree), as dry runs say

    def contents(self) -> str:
        """What it ships, as a dry run says it: ``artifact: 12 files, 40.1 KB (the files git tracks)``."""
        from .output import counted, human_bytes

        how = f" ({self.source})" if self.source else ""
        return f"artifact: {counted(len(self.sizes), 'file')}, {human_bytes(sum(self.sizes.values()))}{how}"

    def manifest_bytes(self) -> bytes:
        """The manifest as stored on hosts (gzip), for the next deploy's delta."""
        return gzip.compress(format_manifest(self.manifest), compresslevel=6, mtime=0)

    def discard(self) -> None:
        """Remove the tar packed from a directory artifact, or the export it was built in."""
        if self.temporary:
            self.path.unlink(missing_ok=True)
        if self.temporary_dir is not None:
            shutil.rmtree(self.temporary_dir, ignore_errors=True)


def file_chunks(path: Path) -> Iterator[bytes]:
    """A file in chunks, for streaming: memory stays flat whatever the size."""
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


class _HashingReader(io.RawIOBase):
    """Feeds every byte read through sha256, so checking and hashing take one pass."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.digest.update(data)
        self.count += len(data)
        buffer[: len(data)] = data
        return len(data)

    def drain(self) -> None:
        while self.read(CHUNK):
            pass


def build(config: Config, root: Path | None = None) -> None:
    """Run ``artifact.build`` from the project root (or an export); a failure names the command."""
    command = config.artifact_build
    if not command:
        return
    proc = subprocess.run(command, shell=True, cwd=root or config.root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:])
        raise ArtifactError(f"artifact.build: `{command}` exited {proc.returncode}: {tail or 'no output'}")


def inspect(path: Path, max_unpacked: int, label: str) -> Artifact:
    """Check every member and hash the file in one streaming pass."""
    with path.open("rb") as raw:
        is_gzip = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        reader = _HashingReader(raw)
        unpacked = members = 0
        manifest: dict[str, Entry] = {}
        sizes: dict[str, int] = {}
        links = LinkTable()
        try:
            with tarfile.open(fileobj=io.BufferedReader(reader, CHUNK), mode="r|*") as tar:
                for member in tar:
                    problem = member_problem(member) or links.add(member)
                    if problem:
                        raise ArtifactError(f"{label}: refused: member {member.name!r}: {problem}")
                    members += 1
                    unpacked += max(member.size, 0)
                    if unpacked > max_unpacked:
                        raise ArtifactError(
                            f"{label}: refused: expands past artifact.max_unpacked_size "
                            f"({max_unpacked} bytes)"
                        )
                    name = clean_name(member.name)
                    if name:
                        manifest[name] = _entry(tar, member)
                        if member.isfile():
                            sizes[name] = member.size
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArtifactError(f"{label}: not a readable tar archive ({exc})") from None
        reader.drain()
    if members == 0:
        raise ArtifactError(f"{label}: the archive is empty")
    chained = links.problem()  # links are judged together, once every one of them is known
    if chained:
        raise ArtifactError(f"{label}: refused: member {chained[0]!r}: {chained[1]}")
    return Artifact(
        path,
        is_gzip,
        reader.digest.hexdigest(),
        reader.count,
        unpacked,
        members,
        manifest=manifest,
        has_hardlinks=any(e.kind == "h" for e in manifest.values()),
        sizes=sizes,
    )


def _entry(tar: tarfile.TarFile, member: tarfile.TarInfo) -> Entry:
    """Hash a member's content as it streams past (the archive is read once)."""
    mode = member.mode & 0o7777
    if member.isdir():
        return Entry("d", "-", mode)
    if member.issym() or member.islnk():
        kind = "l" if member.issym() else "h"
        return Entry(kind, hashlib.sha256(member.linkname.encode()).hexdigest()[:32], mode)
    digest = hashlib.sha256()
    handle = tar.extractfile(member)
    if handle is not None:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return Entry("f", digest.hexdigest()[:32], mode)


def write_delta(art: Artifact, send: set[str], removed: list[str]) -> Path:
    """A gzipped tar of only the members in ``send``, plus the list of paths not to reuse, in
    a temp file (streamed from the artifact, never held in memory). Always gzipped (level
    1): cheap, and it squeezes out tar's padding, which dominates small deltas."""
    # Kept past closing (delete=False) on purpose: the caller streams it, then unlinks it.
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        prefix="deployer-delta-", suffix=".tar", delete=False
    )
    try:
        with handle, art.path.open("rb") as source:
            sink = gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=1, mtime=0)
            with sink, tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT) as out:
                listing = "".join(p + "\n" for p in sorted(send | set(removed))).encode("utf-8")
                info = tarfile.TarInfo(EXCLUDE_LIST)
                info.size, info.mode = len(listing), 0o600
                out.addfile(info, io.BytesIO(listing))
                with tarfile.open(fileobj=source, mode="r|*") as tar:
                    for member in tar:
                        if clean_name(member.name) in send:
                            data = tar.extractfile(member) if member.isfile() else None
                            out.addfile(member, data)
    except BaseException:
        os.unlink(handle.name)
        raise
    return Path(handle.name)


def pack_directory(directory: Path, destination: BinaryIO, selection: tree.Selection | None = None) -> None:
    """Write a deterministic tar of the ``selection`` of ``directory`` (default: every file
    but ``.git``): sorted names, no owner names or ids, so the same tree always gives the
    same sha256. Modes are normalised: setuid, setgid, sticky bits and world-write are
    dropped (a tarball holding them is refused instead). Symlinks are packed as links."""
    chosen = selection or tree.select(directory, "all", ())

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        if not info.issym():
            info.mode = safe_mode(info.mode)
        return info

    with tarfile.open(fileobj=destination, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name in chosen.names:
            tar.add(os.path.join(directory, name), arcname=name, recursive=False, filter=normalise)


def prepare(config: Config, ref: str | None = None) -> Artifact:
    """Build (if configured), pack a directory artifact, and check it. Touches no host.

    With ``ref``, the build runs in a ``git archive`` export of that commit, so what is
    deployed is exactly the commit, whatever the working tree holds."""
    if ref is None:
        return _prepare_in(config, config.root)
    from . import git

    folder = git.export(config.root, git.resolve(config.root, ref))
    try:
        found = _prepare_in(config, folder, files="all")  # the export holds the commit's files only
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if found.temporary:  # packed into a temp file: the export is no longer needed
        shutil.rmtree(folder, ignore_errors=True)
        return found
    return dataclasses.replace(found, temporary_dir=folder)


def _prepare_in(config: Config, root: Path, files: str | None = None) -> Artifact:
    build(config, root)
    path = (
        root / config.artifact_path.relative_to(config.root)
        if config.artifact_path.is_relative_to(config.root)
        else config.artifact_path
    )
    label = f"artifact {_display(path, root)}"
    if not path.exists():
        raise ArtifactError(f"{label}: not found (artifact.path)")
    if path.is_dir():
        return _pack_in(config, path, label, files or config.artifact_files)
    if path.stat().st_size == 0:
        raise ArtifactError(f"{label}: the file is empty")
    from .inspectcache import inspect_cached  # it builds on this module

    return inspect_cached(path, config.max_unpacked_size, label)


def _pack_in(config: Config, path: Path, label: str, files: str) -> Artifact:
    """Pack the files a directory artifact ships (deployer.tree decides which) into a temp tar."""
    if not any(path.iterdir()):
        raise ArtifactError(f"{label}: the directory is empty")
    never = (Path(config.deploy_to),) if config.transport == "local" else ()
    chosen = tree.select(path, files, config.artifact_exclude, never, label)
    if not chosen.files:
        raise ArtifactError(f"{label}: no file left to ship ({chosen.source}, less artifact.exclude)")
    # Kept past closing on purpose: it is the artifact until ``discard``.
    handle = tempfile.NamedTemporaryFile(prefix="deployer-", suffix=".tar", delete=False)  # noqa: SIM115
    try:
        with handle:
            pack_directory(path, handle, chosen)
        found = inspect(Path(handle.name), config.max_unpacked_size, label)
        from .inspectcache import remember  # it builds on this module

        remember(found)
    except BaseException:
        os.unlink(handle.name)
        raise
    source = chosen.source
    if chosen.excluded:
        source += f", less {chosen.excluded} excluded by artifact.exclude"
    return dataclasses.replace(found, temporary=True, source=source)


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
