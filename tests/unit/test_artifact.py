"""Artifact checks run locally, before any host is touched."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from deployer.artifact import inspect, pack_directory
from deployer.errors import ArtifactError


def tar_with(path: Path, *members: tarfile.TarInfo, gz: bool = False) -> Path:
    with tarfile.open(path, "w:gz" if gz else "w") as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return path


def member(name, type=tarfile.REGTYPE, size=1, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.size, info.linkname = type, size if type == tarfile.REGTYPE else 0, link
    return info


@pytest.mark.parametrize(
    "bad, reason",
    [
        (member("../x"), "'..' in path"),
        (member("a/../../x"), "'..' in path"),
        (member("/etc/x"), "absolute path"),
        (member("l", tarfile.SYMTYPE, link="/etc"), "symlink to absolute path"),
        (member("d/l", tarfile.SYMTYPE, link="../../x"), "symlink pointing outside"),
        (member("h", tarfile.LNKTYPE, link="../x"), "hard link pointing outside"),
        (member("dev", tarfile.CHRTYPE), "device or fifo"),
        (member("fifo", tarfile.FIFOTYPE), "device or fifo"),
    ],
)
def test_unsafe_members_are_refused(tmp_path, bad, reason):
    path = tar_with(tmp_path / "a.tar", member("ok"), bad)
    with pytest.raises(ArtifactError, match=reason):
        inspect(path, 10**9, "artifact a.tar")


def test_safe_links_inside_are_fine_and_sha_matches_file(tmp_path):
    import hashlib

    path = tar_with(tmp_path / "a.tgz", member("d/f"), member("d/l", tarfile.SYMTYPE, link="../d/f"), gz=True)
    art = inspect(path, 10**9, "a")
    assert art.gzip and art.members == 2
    assert art.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_size_cap(tmp_path):
    path = tar_with(tmp_path / "a.tar", member("big", size=5000))
    with pytest.raises(ArtifactError, match="max_unpacked_size"):
        inspect(path, 4000, "a")


def test_empty_and_garbage(tmp_path):
    empty = tmp_path / "e.tar"
    with tarfile.open(empty, "w"):
        pass
    with pytest.raises(ArtifactError, match="empty"):
        inspect(empty, 10**9, "e")
    junk = tmp_path / "j.tar"
    junk.write_bytes(os.urandom(2000))
    with pytest.raises(ArtifactError, match="not a readable tar"):
        inspect(junk, 10**9, "j")


def test_directory_packing_is_deterministic(tmp_path):
    src = tmp_path / "src"
    (src / "b").mkdir(parents=True)
    (src / "b" / "f").write_text("1")
    (src / "a").write_text("2")
    outs = []
    for name in ("one.tar", "two.tar"):
        with open(tmp_path / name, "wb") as fh:
            pack_directory(src, fh)
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    with tarfile.open(tmp_path / "one.tar") as tar:
        assert tar.getnames() == ["b", "a", "b/f"] or tar.getnames() == ["a", "b", "b/f"]


def test_inspection_cache_misses_when_the_file_changes(tmp_path, monkeypatch):
    from deployer.inspectcache import inspect_cached

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tar_with(tmp_path / "a.tar", member("f"))
    first = inspect_cached(path, 10**9, "a")
    assert inspect_cached(path, 10**9, "a").sha256 == first.sha256  # from the cache
    with tarfile.open(path, "w") as tar:  # same size, new content
        info = member("g")
        tar.addfile(info, io.BytesIO(b"y"))
    assert inspect_cached(path, 10**9, "a").sha256 != first.sha256
    assert list((tmp_path / "cache" / "deployer" / "inspected").iterdir())
