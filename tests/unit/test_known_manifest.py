"""The local index of inspected artifacts by sha256 (deployer.inspectcache): what a delta
uses instead of reading the base release's manifest back from a host."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

from deployer import inspectcache
from deployer.artifact import inspect


def artifact(tmp_path, body: bytes):
    path = tmp_path / f"a{len(body)}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("index.html")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    return inspect(path, 10**9, "artifact")


def test_a_remembered_artifact_gives_back_its_manifest_by_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    found = inspectcache.remember(artifact(tmp_path, b"hello\n"))
    assert inspectcache.known_manifest(found.sha256) == found.manifest
    assert inspectcache.known_manifest("0" * 64) is None


def test_names_that_are_no_sha256_and_broken_records_are_unknown(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    found = inspectcache.remember(artifact(tmp_path, b"hello\n"))
    for name in (None, "", "../../etc/passwd", found.sha256.upper() + "x"):
        assert inspectcache.known_manifest(name) is None
    record = inspectcache.by_sha256(found.sha256)
    record.write_bytes(gzip.compress(b'{"checked_ns": 1, "sha256": "' + found.sha256.encode() + b'"}'))
    assert inspectcache.known_manifest(found.sha256) is None  # no manifest in it
    record.write_bytes(b"not gzip")
    assert inspectcache.known_manifest(found.sha256) is None


def test_only_the_newest_records_are_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    shas = []
    for n in range(5):
        found = artifact(tmp_path, b"x" * (n + 1))
        inspectcache.remember(found)
        os.utime(inspectcache.by_sha256(found.sha256), ns=(n * 10**9, n * 10**9))
        shas.append(found.sha256)
    inspectcache._prune(inspectcache.by_sha256(shas[0]).parent, keep=3)
    assert [inspectcache.known_manifest(s) is not None for s in shas] == [False, False, True, True, True]
