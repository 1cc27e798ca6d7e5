"""Build, pack, check and stream the artifact. Runs only on this machine.

An artifact is checked whole before any host is touched: it must exist and be non-empty,
and no member may escape the release (absolute paths, ``..``, links pointing outside,
device files) or expand past ``artifact.max_unpacked_size``. The file is streamed in
chunks, never read into memory whole.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

from .config import Config
from .errors import ArtifactError

CHUNK = 1024 * 1024
GZIP_MAGIC = b"\x1f\x8b"


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

    def chunks(self) -> Iterator[bytes]:
        with self.path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                yield chunk

    def discard(self) -> None:
        """Remove the tar packed from a directory artifact."""
        if self.temporary:
            self.path.unlink(missing_ok=True)


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


def build(config: Config) -> None:
    """Run ``artifact.build`` from the project root; a failure names the command."""
    command = config.artifact_build
    if not command:
        return
    proc = subprocess.run(command, shell=True, cwd=config.root, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-3:])
        raise ArtifactError(f"artifact.build: `{command}` exited {proc.returncode}: {tail or 'no output'}")


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member would escape or damage the release, or None if it is safe."""
    name = member.name
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if name.startswith("/"):
        return "absolute path"
    if ".." in parts:
        return "'..' in path"
    if member.isdev():
        return "device or fifo file"
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            return f"symlink to absolute path {target}"
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname("/".join(parts)), target))
        if resolved == ".." or resolved.startswith("../"):
            return f"symlink pointing outside the release ({target})"
    if member.islnk():
        target = member.linkname
        if target.startswith("/") or ".." in target.split("/"):
            return f"hard link pointing outside the release ({target})"
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "unsupported member type"
    return None


def inspect(path: Path, max_unpacked: int, label: str) -> Artifact:
    """Check every member and hash the file in one streaming pass."""
    with path.open("rb") as raw:
        is_gzip = raw.read(2) == GZIP_MAGIC
        raw.seek(0)
        reader = _HashingReader(raw)
        unpacked = members = 0
        try:
            with tarfile.open(fileobj=io.BufferedReader(reader, CHUNK), mode="r|*") as tar:
                for member in tar:
                    problem = member_problem(member)
                    if problem:
                        raise ArtifactError(f"{label}: refused: member {member.name!r}: {problem}")
                    members += 1
                    unpacked += max(member.size, 0)
                    if unpacked > max_unpacked:
                        raise ArtifactError(
                            f"{label}: refused: expands past artifact.max_unpacked_size ({max_unpacked} bytes)"
                        )
        except (tarfile.TarError, EOFError, OSError) as exc:
            raise ArtifactError(f"{label}: not a readable tar archive ({exc})") from None
        reader.drain()
    if members == 0:
        raise ArtifactError(f"{label}: the archive is empty")
    return Artifact(path, is_gzip, reader.digest.hexdigest(), reader.count, unpacked, members)


def pack_directory(directory: Path, destination: BinaryIO) -> None:
    """Write a deterministic tar of ``directory``: sorted names, no owner names or ids,
    so the same tree always gives the same sha256."""

    def normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    with tarfile.open(fileobj=destination, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for folder, dirs, files in os.walk(directory):
            dirs.sort()
            rel_folder = os.path.relpath(folder, directory)
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(folder, name)
                arcname = name if rel_folder == "." else f"{rel_folder}/{name}"
                tar.add(full, arcname=arcname, recursive=False, filter=normalise)


def prepare(config: Config) -> Artifact:
    """Build (if configured), pack a directory artifact, and check it. Touches no host."""
    build(config)
    path = config.artifact_path
    label = f"artifact {_display(path, config.root)}"
    if not path.exists():
        raise ArtifactError(f"{label}: not found (artifact.path)")
    if path.is_dir():
        if not any(path.iterdir()):
            raise ArtifactError(f"{label}: the directory is empty")
        handle = tempfile.NamedTemporaryFile(prefix="deployer-", suffix=".tar", delete=False)
        try:
            with handle:
                pack_directory(path, handle)
            found = inspect(Path(handle.name), config.max_unpacked_size, label)
        except BaseException:
            os.unlink(handle.name)
            raise
        return Artifact(**{**found.__dict__, "temporary": True})
    if path.stat().st_size == 0:
        raise ArtifactError(f"{label}: the file is empty")
    return inspect(path, config.max_unpacked_size, label)


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
