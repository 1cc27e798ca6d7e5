"""Getting a release's files onto a host with as few bytes as possible.

Per host, one of three ways, decided from facts already read:
- identical: a release with the same artifact sha256 is on the host; the new release is
  a hard-linked copy of it and no artifact byte travels;
- delta: the host has a base release with a stored manifest; the new release starts as a
  copy of it (its artifact files, hard-linked) and only changed files travel, with the
  list of paths not to reuse;
- full: the whole artifact is streamed into ``tar`` over one channel.
"""

from __future__ import annotations

import base64
import binascii
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from . import commands
from .artifact import Artifact, diff_manifest, file_chunks, gunzip_manifest, parse_manifest, write_delta
from .config import inside_relative
from .errors import DeployFailed
from .facts import HostFacts
from .inspectcache import known_manifest
from .layout import MANIFEST_NAME, Layout
from .transport import Result, Session

if TYPE_CHECKING:
    from .transcode import ZstdCopy

FULL, DELTA, IDENTICAL, PULL = "full", "delta", "identical", "pull"
NO_MANIFEST = (commands.EXIT_NO_MANIFEST,)
# Given the mode, what prepares the release once it is made: a script and the per-release
# files (a small tar) it unpacks, sent ahead of the artifact on the same channel.
Then = Callable[[str], tuple[str, bytes]]


@dataclass(frozen=True)
class Upload:
    """How a host received its release: the mode, the base release, payload bytes."""

    mode: str
    base: int | None
    sent: int
    why_full: str = ""
    zstd: bool = False  # the full upload sent the artifact's zstd copy (deployer.transcode)

    def describe(self, human) -> str:
        if self.mode == IDENTICAL:
            return f"identical to release {self.base}: no upload"
        if self.mode == DELTA:
            return f"delta from release {self.base}: {human(self.sent)} sent"
        if self.mode == PULL:
            return "downloaded by the host from artifact.url, sha256 verified"
        how = " as zstd" if self.zstd else ""
        return f"full upload: {human(self.sent)} sent{how}" + (f" ({self.why_full})" if self.why_full else "")


def choose_base(fact: HostFacts, shas: dict[int, str], sha256: str) -> tuple[int | None, bool]:
    """The release to build from on this host, and whether it holds the very same artifact."""
    complete = fact.complete
    same = [n for n in complete if shas.get(n) == sha256]
    if same:
        return max(same), True
    if fact.current in complete:
        return fact.current, False
    return (max(complete), False) if complete else (None, False)


class Uploader:
    """Uploads one artifact to many hosts; deltas are built once per distinct base."""

    def __init__(
        self,
        art: Artifact,
        layout: Layout,
        delta_enabled: bool,
        shas: dict[int, str],
        url: str | None = None,
        reporter=None,
        zstd: ZstdCopy | None = None,
    ) -> None:
        self.art = art
        self.zstd = zstd
        self.url = url
        self.reporter = reporter
        self.layout = layout
        self.delta_enabled = delta_enabled
        self.delta_possible = delta_enabled and not art.has_hardlinks
        self.shas = shas
        self._deltas: dict[tuple, Path | None] = {}
        self._lock = threading.Lock()

    def upload(self, session: Session, fact: HostFacts, number: int, then: Then | None = None) -> Upload:
        """Make the release on the host; with ``then``, prepare it in the same round trip."""
        base, identical = choose_base(fact, self.shas, self.art.sha256)
        if base is not None and identical and self.delta_enabled:
            clone = commands.clone_release(self.layout, base, number, delta=False)
            result = session.stream(*self._with(then, IDENTICAL, clone))
            if result.ok:
                return Upload(IDENTICAL, base, 0)
            if result.exit_code != commands.EXIT_NO_MANIFEST:
                self._fail(session, number, result)
        if self.url:
            script = commands.download_release(self.layout, number, self.url, self.art.sha256, self.art.gzip)
            self._run(session, *self._with(then, PULL, script), number)
            return Upload(PULL, None, 0)
        why = (
            "" if base is None else "delta uploads are off (artifact.delta)"
        )  # a first deploy needs no reason
        if base is not None and self.delta_possible:
            delta, why = self._delta_for(session, base)
            if delta is not None:
                script = commands.clone_release(self.layout, base, number, delta=True)
                result = self._run(session, *self._with(then, DELTA, script), number, delta, NO_MANIFEST)
                if result.ok:
                    return Upload(DELTA, base, delta.stat().st_size)
                why = f"release {base} has no usable manifest on the host"
        elif base is not None and self.delta_enabled:
            why = "the artifact holds hard links"
        copy = self.zstd.for_host(fact) if self.zstd else None
        script = commands.unpack(self.layout, number, self.art.gzip, zstd=copy is not None)
        payload = copy or self.art.path
        size = payload.stat().st_size
        try:
            self._run(session, *self._with(then, FULL, script), number, payload)
        except DeployFailed:
            if copy is not None and self.zstd:
                self.zstd.suspect = True  # dropped once every host is done with it
            raise
        return Upload(FULL, None, size, why, zstd=copy is not None)

    def _with(self, then: Then | None, mode: str, script: str) -> tuple[str, list[bytes]]:
        """The mode's script, and what goes ahead of its payload: with ``then``, the
        preparing script follows it and its files travel first (commands.upload_then)."""
        if then is None:
            return script, []
        prepare, files = then(mode)
        return commands.upload_then(script, prepare, self.files_path(), len(files)), [files]

    def files_path(self) -> str:
        """Where the per-release files wait on the host: inside the lock directory, ours
        while the deploy holds it (``unlock`` removes anything left there)."""
        return f"{self.layout.lock}/release-files.tar"

    def _run(
        self,
        session: Session,
        script: str,
        ahead: list[bytes],
        number: int,
        payload: Path | None = None,
        tolerated: tuple[int, ...] = (),
    ) -> Result:
        """Stream ``payload`` (after ``ahead``) into ``script``; a failure raises, unless its
        exit code is ``tolerated`` (the caller has another way)."""
        shown = (
            self.reporter.upload_progress(session.host.name, payload.stat().st_size)
            if payload and self.reporter
            else None
        )
        skip = [len(ahead)]

        def progress(sent: int) -> None:  # the payload's share only
            if skip[0]:
                skip[0] -= 1
            elif shown:
                shown(sent)

        chunks = file_chunks(payload) if payload else iter(())
        result = session.stream(script, _chain(ahead, chunks), progress if shown else None)
        if not result.ok and result.exit_code not in tolerated:
            self._fail(session, number, result)
        return result

    @staticmethod
    def _fail(session: Session, number: int, result) -> None:
        if result.exit_code == commands.EXIT_AFTER_UPLOAD:
            raise DeployFailed(f"host {session.host.name}: prepare release failed: {result.output_tail()}")
        raise DeployFailed(
            f"host {session.host.name}: upload of release {number} failed: {result.output_tail()}"
        )

    def _delta_for(self, session: Session, base: int) -> tuple[Path | None, str]:
        """The delta against the host's base release, or (None, why a full upload is used).
        The base's manifest is this machine's own record of its artifact when it has one
        (no round trip, nothing to trust from the host), else the one stored on the host."""
        base_manifest = known_manifest(self.shas.get(base))
        if base_manifest is None:
            manifest_path = f"{self.layout.release(base)}/{MANIFEST_NAME}"
            result = session.run(commands.read_base64(manifest_path), read_only=True)
            try:
                base_manifest = parse_manifest(gunzip_manifest(base64.b64decode(result.stdout)))
            except (binascii.Error, ValueError, zlib.error):
                return None, f"release {base} has no readable manifest"
        base_manifest = {p: e for p, e in base_manifest.items() if inside_relative(p)}
        if not base_manifest:
            return None, f"release {base} has an empty manifest"
        diff = diff_manifest(base_manifest, self.art.manifest)
        if diff is None:
            return None, "paths changed kind or hard links are involved"
        send, removed = diff
        if sum(self.art.sizes.get(p, 0) for p in send) >= self.art.unpacked_size * 0.8:
            return None, "most of the artifact changed"  # known before building the delta
        key = (frozenset(send), tuple(removed))
        with self._lock:
            if key not in self._deltas:
                path = write_delta(self.art, send, removed)
                if path.stat().st_size >= self.art.size * 0.8:
                    path.unlink()
                    path = None
                self._deltas[key] = path
            if self._deltas[key] is None:
                return None, "most of the artifact changed"
            return self._deltas[key], ""

    def discard(self) -> None:
        if self.zstd:
            self.zstd.discard()
        for path in self._deltas.values():
            if path is not None:
                path.unlink(missing_ok=True)


def _chain(ahead: list[bytes], chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield from ahead
    yield from chunks
