"""The zstd copy: who gets it, the unpack command for it, the probe's fact, the copy itself."""

from __future__ import annotations

import dataclasses
import gzip
import io
import os
import shutil
import subprocess
import tarfile

import pytest
from project import Project

from deployer import commands, transcode
from deployer.artifact import inspect
from deployer.commands import probe
from deployer.facts import parse_probe
from deployer.layout import Layout
from deployer.transcode import AUTO, FLEET_MIN, GZIP, ZSTD, ZstdCopy, cached_copy, wanted, zstd_copy

HAS_ZSTD = shutil.which("zstd") is not None


@pytest.mark.parametrize(
    ("setting", "local", "host", "hosts", "cached", "expected"),
    [
        (AUTO, True, True, FLEET_MIN, False, True),  # a fleet: worth making the copy
        (AUTO, True, True, FLEET_MIN - 1, False, False),  # a few hosts: not worth the transcode
        (AUTO, True, True, 1, True, True),  # already made: free
        (AUTO, True, False, 16, True, False),  # this host cannot unpack it
        (AUTO, False, True, 16, True, False),  # no zstd here: gzip, silently
        (ZSTD, True, True, 1, False, True),
        (ZSTD, True, False, 1, False, False),
        (ZSTD, False, True, 1, False, False),
        (GZIP, True, True, 16, True, False),
    ],
)
def test_who_gets_the_zstd_copy(setting, local, host, hosts, cached, expected):
    assert wanted(setting, local, host, hosts, cached) is expected


def test_unpack_for_zstd_lets_tar_run_the_decompressor():
    script = commands.unpack(Layout("/srv/app"), 3, gzip=True, zstd=True)
    assert "(cd -- /srv/app/releases/3 && tar --use-compress-program=zstd -xf - --no-same-owner" in script
    assert "-xzf" not in script
    assert "(cd -- /srv/app/releases/3 && tar -xzf - " in commands.unpack(Layout("/srv/app"), 3, gzip=True)


def test_the_probe_says_whether_zstd_is_on_the_path(tmp_path):
    assert parse_probe("exists yes\nzstd yes\n--- deployer log ---\n").zstd is True
    assert parse_probe("exists yes\n--- deployer log ---\n").zstd is False
    assert parse_probe("exists yes\nzstd maybe\n--- deployer log ---\n").zstd is False
    out = subprocess.run(["sh", "-c", probe(Layout(str(tmp_path)))], capture_output=True, text=True).stdout
    assert parse_probe(out).zstd is HAS_ZSTD


def small_artifact(tmp_path, gzipped: bool):
    path = tmp_path / ("a.tar.gz" if gzipped else "a.tar")
    with tarfile.open(path, "w:gz" if gzipped else "w") as tar:
        for i in range(20):
            data = f"file {i}\n".encode() * 100
            info = tarfile.TarInfo(f"dir/f{i}.txt")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return inspect(path, 10**9, "artifact")


@pytest.mark.skipif(not HAS_ZSTD, reason="no zstd on this machine")
@pytest.mark.parametrize("gzipped", [True, False])
def test_the_copy_holds_the_artifacts_own_tar_stream(tmp_path, monkeypatch, gzipped):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    art = small_artifact(tmp_path, gzipped)
    copy = transcode.transcode(art, "zstd")
    assert copy == cached_copy(art.sha256)
    raw = art.path.read_bytes()
    tar = gzip.decompress(raw) if gzipped else raw
    assert subprocess.run(["zstd", "-dc", str(copy)], capture_output=True, check=True).stdout == tar
    assert transcode.transcode(art, "/bin/false") == copy  # cached: not made again


def test_a_failed_transcode_sends_the_artifact_itself(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    art = small_artifact(tmp_path, True)
    assert transcode.transcode(art, "/bin/false") is None
    assert not list(cached_copy(art.sha256).parent.iterdir())  # no partial copy left behind


def test_without_a_local_zstd_every_host_gets_the_artifact(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    art = small_artifact(tmp_path, True)
    facts = parse_probe("zstd yes\n--- deployer log ---\n")
    assert ZstdCopy(art, ZSTD, 16, program=None).for_host(facts) is None


def test_old_copies_are_pruned(tmp_path):
    for i in range(5):
        (tmp_path / f"{i}.tar.zst").write_bytes(b"x")
        stamp = 1_700_000_000 + i
        os.utime(tmp_path / f"{i}.tar.zst", (stamp, stamp))
    transcode._prune(tmp_path, keep=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.tar.zst", "3.tar.zst", "4.tar.zst"]


@pytest.mark.skipif(not HAS_ZSTD, reason="no zstd on this machine")
def test_a_copy_a_host_failed_with_is_dropped_once_the_upload_is_over(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    art = small_artifact(tmp_path, True)
    facts = parse_probe("zstd yes\n--- deployer log ---\n")
    copy = ZstdCopy(art, ZSTD, 1)
    path = copy.for_host(facts)
    assert path is not None and path.is_file()
    copy.discard()
    assert path.is_file()  # kept: it worked
    copy.suspect = True
    copy.discard()
    assert not path.exists()


def test_a_deploy_makes_no_copy_on_a_dry_run_to_a_folder_or_with_gzip(tmp_path):
    config = Project.create(tmp_path, [], None).config()
    art = small_artifact(tmp_path, True)
    facts = {name: parse_probe("zstd yes\n--- deployer log ---\n") for name in "abcd"}
    ssh = dataclasses.replace(config, transport="ssh")
    assert zstd_copy(art, config, facts, dry_run=False) is None  # transport: local
    assert zstd_copy(art, ssh, facts, dry_run=True) is None
    assert zstd_copy(art, dataclasses.replace(ssh, compression=GZIP), facts, dry_run=False) is None
    chosen = zstd_copy(art, ssh, facts, dry_run=False)
    assert chosen is not None and chosen.setting == AUTO and chosen.zstd_hosts == 4
