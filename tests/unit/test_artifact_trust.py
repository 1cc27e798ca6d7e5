"""Hostile artifacts and manifests, in process (issue 10, findings 3, 4 and 7).

Link chains are judged against the kernel itself: a property test builds random link
tables as real symlinks in a folder, asks the kernel where each leads (``realpath``,
``ELOOP``), and expects the artifact check to refuse exactly the trees the kernel would
let out. The host-side scripts (shared links, clone from a hand-edited base manifest,
pack for promote, unpack as root) really run under ``/bin/sh`` on this machine.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer import commands
from deployer.artifact import gunzip_manifest, inspect, pack_directory, parse_manifest
from deployer.errors import ArtifactError
from deployer.layout import MANIFEST_MAX, MANIFEST_NAME, Layout
from deployer.members import MAX_LINK_HOPS

# -- building archives ------------------------------------------------------------------------


def spec_tar(path: Path, *spec: tuple) -> Path:
    """A tar from (kind, name, mode-or-target) rows: f file, d dir, l symlink, h hard link."""
    with tarfile.open(path, "w") as tar:
        for kind, name, extra in spec:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "f":
                info.mode, data = extra, io.BytesIO(b"x")
                info.size = 1
            elif kind == "d":
                info.type, info.mode = tarfile.DIRTYPE, extra
            else:
                info.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
                info.linkname, info.mode = extra, 0o777
            tar.addfile(info, data)
    return path


def refusal(path: Path) -> str | None:
    try:
        inspect(path, 10**9, "artifact a.tar")
    except ArtifactError as exc:
        assert "\n" not in exc.message
        return exc.message
    return None


OK = ("f", "index.html", 0o644)
ISSUE_CHAIN = [
    ("d", "d1", 0o755),
    ("l", "d1/l", ".."),
    ("l", "d1/l2", "l/.."),
    ("l", "d1/l3", "l2/../.."),
    ("l", "d1/out", "l3/victim"),
    ("l", "config", "d1/out"),
]
CHAINS = {
    "the issue's chain": (ISSUE_CHAIN, "'config': symlink chain leads outside the release"),
    "one link of it: d1/l2 -> l/..": (
        [("d", "d1", 0o755), ("l", "d1/l", ".."), ("l", "d1/l2", "l/..")],
        "'d1/l2': symlink chain leads outside",
    ),
    "dot-dot after a link climbs from where it led": (
        [("d", "a/b/c", 0o755), ("l", "a/b/c/top", "../../.."), ("l", "a/b/c/x", "top/../z")],
        "'a/b/c/x': symlink chain leads outside",
    ),
    "trailing slash follows": (
        [("d", "d", 0o755), ("l", "d/top", ".."), ("l", "y", "d/top/")],
        None,
    ),
    "a loop": ([("l", "a", "b"), ("l", "b", "a")], "more than 40 symlinks"),
    "a link to itself": ([("l", "self", "self/x")], "more than 40 symlinks"),
    f"{MAX_LINK_HOPS + 1} links in a row": (
        [("l", f"c{i}", f"c{i + 1}") for i in range(MAX_LINK_HOPS + 1)] + [OK],
        "more than 40 symlinks",
    ),
    f"{MAX_LINK_HOPS} links in a row (allowed)": (
        [("l", f"c{i}", f"c{i + 1}") for i in range(MAX_LINK_HOPS - 1)] + [("l", "c39", "index.html")],
        None,
    ),
    "a safe chain": ([("d", "d/e", 0o755), ("l", "d/e/up", ".."), ("l", "d/e/top", "up/..")], None),
    "hard link through a symlink chain": (
        [*ISSUE_CHAIN[:4], ("h", "h", "d1/l3/victim")],
        "leads outside the release",
    ),
    "hard link to a symlink, moved up a level": (
        [("d", "d", 0o755), ("l", "d/up", ".."), ("h", "up2", "d/up")],
        "'up2': symlink chain leads outside",
    ),
    "hard link to a symlink, same level (allowed)": (
        [("d", "d", 0o755), ("l", "d/up", ".."), ("h", "d/up2", "d/up")],
        None,
    ),
    "a member unpacked through a link of the archive": (
        [("d", "d", 0o755), ("l", "a", "."), ("l", "a/b", "../x")],
        "'a/b': path goes through the symlink a of the archive",
    ),
    "a file unpacked through a link to a folder": (
        [("d", "d", 0o755), ("l", "a", "d"), ("f", "a/f", 0o644)],
        "'a/f': path goes through the symlink a",
    ),
    "a name twice, once as a link": ([("d", "x", 0o755), ("l", "x", "index.html")], "appears twice"),
}


@pytest.mark.parametrize("case", list(CHAINS))
def test_link_chains_are_resolved_against_the_archive_own_links(tmp_path, case):
    spec, reason = CHAINS[case]
    found = refusal(spec_tar(tmp_path / "a.tar", OK, *spec))
    if reason is None:
        assert found is None
    else:
        assert found and reason in found, found
        assert found.startswith("artifact a.tar: refused: member ")


def test_the_issue_chain_is_refused_in_a_directory_artifact_too(tmp_path):
    """A directory artifact is packed by us from real symlinks: the same check refuses it."""
    src = tmp_path / "app"
    (src / "d1").mkdir(parents=True)
    (src / "index.html").write_text("hi")
    for _, name, target in ISSUE_CHAIN[1:]:
        os.symlink(target, src / name)
    with open(tmp_path / "packed.tar", "wb") as fh:
        pack_directory(src, fh)
    assert "symlink chain leads outside" in (refusal(tmp_path / "packed.tar") or "")


# Random link tables, judged by the kernel. Links live at fixed places under real
# directories, so making them never walks through another link (nothing can be created
# outside the sandbox); only reading them does.
PLACES = ["l1", "l2", "d/l3", "d/e/l4", "d/e/l5"]
PARTS = st.sampled_from(["..", ".", "l1", "l2", "d", "e", "l3", "l4", "l5", "x", ""])
TARGETS = st.lists(PARTS, min_size=1, max_size=5).map("/".join).filter(lambda t: t and not t.startswith("/"))


def kernel_verdict(release: Path, names: list[str]) -> tuple[bool, bool]:
    """(some link leads out of ``release`` or loops, some link's walk meets a missing
    component): where the kernel stops at a missing name, the check assumes the name
    could be a directory one day and judges the rest of the walk, so it may refuse more."""
    out = missing = False
    for name in names:
        try:
            os.stat(release / name)
        except OSError as exc:
            out = out or exc.errno == errno.ELOOP
            missing = missing or exc.errno in (errno.ENOENT, errno.ENOTDIR)
        real = os.path.realpath(release / name)
        out = out or (real != str(release) and not real.startswith(str(release) + os.sep))
    return out, missing


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(PLACES), TARGETS, min_size=1, max_size=5))
def test_link_check_agrees_with_the_kernel(tmp_path_factory, links):
    work = tmp_path_factory.mktemp("links")
    release = work / "deploy" / "releases" / "1"
    (release / "d" / "e").mkdir(parents=True)
    (release / "index.html").write_text("hi")
    for name, target in links.items():
        os.symlink(target, release / name)
    out, missing = kernel_verdict(release.resolve(), list(links))
    with open(work / "packed.tar", "wb") as fh:
        pack_directory(release, fh)
    found = refusal(work / "packed.tar")
    if out:
        assert found is not None, links  # never lets out what the kernel would
    elif not missing:
        assert found is None, (links, found)  # and refuses nothing the kernel keeps inside


# -- modes and names ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "row, reason",
    [
        (("f", "bin/su", 0o4755), "mode 4755 has a setuid, setgid or sticky bit"),
        (("f", "bin/sg", 0o2755), "mode 2755 has a setuid"),
        (("f", "sticky", 0o1644), "mode 1644 has a setuid"),
        (("d", "tmp", 0o1777), "mode 1777 has a setuid"),
        (("d", "shared-group", 0o2775), "mode 2775 has a setuid"),
        (("f", "open.txt", 0o666), "mode 0666 is world-writable"),
        (("d", "uploads", 0o777), "mode 0777 is world-writable"),
        (("f", "-rf", 0o644), "name starts with '-'"),
        (("f", "--checkpoint-action=exec=touch pwned", 0o644), "name starts with '-'"),
        (("d", "--no-same-owner", 0o755), "name starts with '-'"),
        (("f", ".deployer-exclude", 0o644), "names starting with .deployer- are the deployer's own"),
        (("l", ".deployer-release.json", "index.html"), "names starting with .deployer-"),
    ],
)
def test_special_modes_and_option_like_names_are_refused_in_a_tarball(tmp_path, row, reason):
    found = refusal(spec_tar(tmp_path / "a.tar", OK, row))
    assert found and reason in found and repr(row[1]) in found, found


def test_option_like_names_deeper_down_and_symlink_modes_are_fine(tmp_path):
    assert refusal(spec_tar(tmp_path / "a.tar", OK, ("f", "d/-rf", 0o644), ("l", "ln", "index.html"))) is None


def test_a_directory_artifact_has_its_modes_normalised(tmp_path):
    src = tmp_path / "app"
    (src / "tmp").mkdir(parents=True)
    for name, mode in [("su", 0o4755), ("sg", 0o2755), ("open", 0o666), ("plain", 0o640)]:
        (src / name).write_text(name)
        os.chmod(src / name, mode)
    os.chmod(src / "tmp", 0o1777)
    with open(tmp_path / "packed.tar", "wb") as fh:
        pack_directory(src, fh)
    art = inspect(tmp_path / "packed.tar", 10**9, "app")
    modes = {name: entry.mode for name, entry in art.manifest.items()}
    assert modes == {"su": 0o755, "sg": 0o755, "open": 0o664, "plain": 0o640, "tmp": 0o775}


def test_unpack_as_root_drops_special_bits_and_world_write(tmp_path):
    """The host side on its own (the check above refuses such tarballs before this): as
    root, ``tar -x`` would keep the archive's modes; the unpack never does."""
    if os.geteuid() != 0:
        pytest.skip("tar keeps archive modes only when run as root")
    archive = spec_tar(tmp_path / "a.tar", ("f", "su", 0o4755), ("f", "open", 0o666), ("d", "t", 0o1777))
    script = commands.unpack(Layout(str(tmp_path / "site")), 1, gzip=False)
    with archive.open("rb") as stdin:
        subprocess.run(["sh", "-c", script], stdin=stdin, check=True)
    release = tmp_path / "site" / "releases" / "1"
    found = {name: stat.S_IMODE((release / name).stat().st_mode) for name in ("su", "open", "t")}
    assert found == {"su": 0o755, "open": 0o644, "t": 0o755}


# -- manifests read back from hosts -------------------------------------------------------------


def test_a_manifest_gzip_bomb_is_cut_off(monkeypatch):
    from deployer import artifact

    monkeypatch.setattr(artifact, "MANIFEST_MAX", 1024 * 1024)  # the logic, without 128 MiB in memory
    bomb = gzip.compress(b"f 0 644 x\n" * (1024 * 1024 // 10 + 1), compresslevel=9)
    assert len(bomb) < 10 * 1024
    with pytest.raises(ValueError, match="expands past"):
        gunzip_manifest(bomb)
    assert parse_manifest(b"f 0 644 x\n" * (1024 * 1024 // 10 + 1)) == {}
    with pytest.raises(ValueError, match="truncated"):
        gunzip_manifest(gzip.compress(b"f ab 644 x y\n")[:-8])
    assert parse_manifest(gunzip_manifest(gzip.compress(b"f ab 644 x y\n"))) == {
        "x y": artifact.Entry("f", "ab", 0o644)
    }


def sh(script: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], capture_output=True, text=True, **kwargs)


def hostile_base(tmp_path: Path, lines: list[str]) -> tuple[Layout, Path]:
    """A deploy_to with release 1 whose manifest was edited by hand."""
    layout = Layout(str(tmp_path / "site"))
    base = Path(layout.release(1))
    (base / "d").mkdir(parents=True)
    (base / "d" / "f").write_text("kept")
    (base / "-rf").write_text("dash")
    (base / MANIFEST_NAME).write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    return layout, base


def _edit(base: Path, change) -> None:
    lines = gzip.decompress((base / MANIFEST_NAME).read_bytes()).decode().splitlines()
    (base / MANIFEST_NAME).write_bytes(gzip.compress("".join(line + "\n" for line in change(lines)).encode()))


HOSTILE_LINES = [
    "d - 755 d",
    "f 0 644 d/f",
    "d - 755 ../../escaped-dir",
    "d - 755 d/../../../escaped-dir2",
    "d - 755 /tmp/abs-dir-from-manifest",
    "f 0 644 ../../../../etc/passwd",
    "f 0 644 -rf",
    "f 0 644 --checkpoint-action=exec=touch PWNED",
    "d - 755 -p",
]


def test_a_hand_edited_base_manifest_creates_nothing_outside_the_release(tmp_path):
    layout, _ = hostile_base(tmp_path, HOSTILE_LINES)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = sh(commands.clone_release(layout, 1, 2, delta=False), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    release = Path(layout.release(2))
    assert (release / "d" / "f").read_text() == "kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert sorted(os.listdir(Path(layout.releases))) == ["1", "2"]
    assert sorted(os.listdir(release)) == [MANIFEST_NAME, "d"]  # '-rf' not reused, nothing else made
    assert not Path("/tmp/abs-dir-from-manifest").exists()


def test_pack_release_takes_no_manifest_name_as_an_option_or_outside_path(tmp_path):
    layout, base = hostile_base(tmp_path, HOSTILE_LINES)
    (base / "--checkpoint-action=exec=touch PWNED").write_text("x")
    (base / "d" / "back\\tslash").write_text("x")  # tar must not unquote it into a tab
    _edit(base, lambda lines: [*lines, "f 0 644 d/back\\tslash"])
    result = subprocess.run(["sh", "-c", commands.pack_release(layout, 1)], capture_output=True, cwd=tmp_path)
    with tarfile.open(fileobj=io.BytesIO(result.stdout)) as tar:
        names = tar.getnames()
    assert names == ["d", "d/f", "d/back\\tslash"]
    assert not list(tmp_path.rglob("PWNED"))


def test_a_manifest_bomb_on_the_host_is_no_usable_manifest(tmp_path):
    layout, base = hostile_base(tmp_path, [])
    with gzip.open(base / MANIFEST_NAME, "wb", compresslevel=1) as fh:
        line = b"d - 755 bomb\n" * 65536
        for _ in range(MANIFEST_MAX // len(line) + 1):
            fh.write(line)
    result = sh(commands.clone_release(layout, 1, 2, delta=False))
    assert result.returncode == commands.EXIT_NO_MANIFEST, result.stderr
    assert not Path(layout.release(2)).exists()


# -- shared paths: the real location, checked on the host --------------------------------------


def finish(layout: Layout, dirs: list[str]) -> subprocess.CompletedProcess:
    return sh(commands.finish_release(layout, 1, dirs, [], "{}", False))


def test_a_shared_dir_under_a_planted_symlink_is_refused_before_anything_is_removed(tmp_path):
    layout = Layout(str(tmp_path / "site"))
    release = Path(layout.release(1))
    release.mkdir(parents=True)
    victim = tmp_path / "victim" / "uploads"
    victim.mkdir(parents=True)
    (victim / "precious").write_text("keep me")
    os.symlink("../../../victim", release / "config")  # as a tampered base release would hold
    result = finish(layout, ["config/uploads"])
    assert result.returncode == commands.EXIT_UNSAFE_PATH
    assert result.stderr.strip() == (
        "shared path config/uploads resolves outside release 1 (through a symlink); refusing to write it"
    )
    assert (victim / "precious").read_text() == "keep me" and not (victim / "uploads").is_symlink()


def test_nested_shared_dirs_never_remove_shared_data(tmp_path):
    """``config`` is linked first, so ``config/uploads`` would then be removed in shared/."""
    layout = Layout(str(tmp_path / "site"))
    (Path(layout.release(1)) / "config" / "uploads").mkdir(parents=True)
    precious = Path(layout.shared_path("config/uploads/precious"))
    precious.parent.mkdir(parents=True)
    precious.write_text("user upload")
    result = finish(layout, ["config", "config/uploads"])
    assert result.returncode == commands.EXIT_UNSAFE_PATH, result.stderr
    assert "shared path config/uploads resolves outside release 1" in result.stderr
    assert precious.read_text() == "user upload"


def test_shared_dirs_inside_the_release_still_link(tmp_path):
    layout = Layout(str(tmp_path / "site"))
    (Path(layout.release(1)) / "public").mkdir(parents=True)
    os.symlink("public", Path(layout.release(1)) / "www")  # a link that stays inside
    result = finish(layout, ["log", "www/uploads"])
    assert result.returncode == 0, result.stderr
    assert os.readlink(Path(layout.release(1)) / "public" / "uploads") == "../../../shared/www/uploads"


# -- the inspection cache and git's "racy" problem ----------------------------------------------


def test_a_same_size_rewrite_within_one_timestamp_tick_misses_the_cache(tmp_path, monkeypatch):
    """Two writes inside one tick of the file system's clock leave size, inode, mtime and
    ctime all equal; the second file must still be inspected afresh. The file system is
    played by freezing the stat the cache sees (a coarse-timestamp file system does that)."""
    from deployer import inspectcache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = spec_tar(tmp_path / "a.tar", ("f", "one", 0o644))
    frozen = path.stat()
    monkeypatch.setattr(inspectcache, "stat_of", lambda p: frozen)
    first = inspectcache.inspect_cached(path, 10**9, "a")
    spec_tar(path, ("f", "two", 0o644))  # same size, same stat (as far as the cache can tell)
    second = inspectcache.inspect_cached(path, 10**9, "a")
    assert second.sha256 != first.sha256
    assert list(second.manifest) == ["two"]


def test_an_entry_checked_well_after_the_file_changed_is_a_hit(tmp_path, monkeypatch):
    """The cache still works: an entry whose file was older than the tick when it was
    inspected is trusted on stat alone (shown by a doctored entry being returned)."""
    import json

    from deployer import inspectcache

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = spec_tar(tmp_path / "a.tar", ("f", "one", 0o644))
    inspectcache.inspect_cached(path, 10**9, "a")
    (entry,) = (tmp_path / "cache" / "deployer" / "inspected").glob("*.json.gz")
    data = json.loads(gzip.decompress(entry.read_bytes()))
    data["checked_ns"] += 10 * 10**9  # as if inspected ten seconds after the file was written
    data["sha256"] = "c0ffee" * 10 + "c0ff"
    entry.write_bytes(gzip.compress(json.dumps(data).encode()))
    assert inspectcache.inspect_cached(path, 10**9, "a").sha256.startswith("c0ffee")
    data["checked_ns"] -= 10 * 10**9  # racy again: the doctored sha256 no longer matches the file
    entry.write_bytes(gzip.compress(json.dumps(data).encode()))
    assert not inspectcache.inspect_cached(path, 10**9, "a").sha256.startswith("c0ffee")
