"""The local cache of artifact inspections, through the real CLI (local transport).

tests/unit/test_artifact.py checks that a changed file misses the cache, but its "from the
cache" step would pass whether or not the cache was read (the sha256 is the same either
way). Here a cache entry is doctored: if the next run prints the doctored checksum, the
cache was hit; a rewritten file must then be inspected again."""

from __future__ import annotations

import gzip
import io
import json
import tarfile


def _tar(path, text: bytes) -> None:
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("index.html")
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text))


def test_an_unchanged_artifact_file_is_read_from_the_cache_and_a_changed_one_is_not(local_project, tmp_path):
    p = local_project
    cache_home = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache_home)}
    artifact = p.root / "app.tar"
    _tar(artifact, b"one\n")
    p.set(artifact={"path": "app.tar"})
    first = p.invoke("deploy", "--stage=test", "--dry-run", env=env)
    assert first.returncode == 0, first.stderr
    entries = list((cache_home / "deployer" / "inspected").glob("*.json.gz"))
    assert len(entries) == 1, entries
    data = json.loads(gzip.decompress(entries[0].read_bytes()))
    real = data["sha256"]
    assert f"sha256 {real[:12]}" in first.stdout

    data["sha256"] = "c0ffee" * 10 + "c0ff"
    # The file was written just before the first run: if that was within a timestamp tick
    # of its inspection, the entry is "racy" and re-verified by sha256 (which the doctored
    # value would fail). Mark it checked well after the write, so only the hit is tested.
    data["checked_ns"] += 10 * 10**9
    entries[0].write_bytes(gzip.compress(json.dumps(data).encode()))
    hit = p.invoke("deploy", "--stage=test", "--dry-run", env=env)
    assert hit.returncode == 0, hit.stderr
    assert "sha256 c0ffeec0ffee" in hit.stdout, hit.stdout  # the doctored entry was used: a cache hit

    _tar(artifact, b"two\n")  # same size, new content: a rewrite must miss the cache
    miss = p.invoke("deploy", "--stage=test", "--dry-run", env=env)
    assert miss.returncode == 0, miss.stderr
    assert "c0ffee" not in miss.stdout and f"sha256 {real[:12]}" not in miss.stdout, miss.stdout
    assert len(list((cache_home / "deployer" / "inspected").glob("*.json.gz"))) == 2
