"""Delta and identical uploads: only changed files travel, and old releases stay intact."""

from __future__ import annotations

import os

import pytest

pytestmark = pytest.mark.ssh


def rx_bytes(host) -> int:
    return int(host.sh("cat /sys/class/net/eth0/statistics/rx_bytes"))


def test_delta_sends_changed_files_and_never_touches_the_base_release(project):
    app = project.root / "app"
    (app / "data").mkdir()
    for i in range(50):
        (app / "data" / f"blob{i}.bin").write_bytes(os.urandom(40_000))
    (app / "gone.txt").write_text("remove me\n")
    (app / "tool.sh").write_text("#!/bin/sh\n")
    project.deploy()
    before = [rx_bytes(h) for h in project.hosts]
    (app / "data" / "blob7.bin").write_bytes(os.urandom(40_000))
    (app / "gone.txt").unlink()
    (app / "tool.sh").chmod(0o755)
    (app / "index.html").write_text("hello v2\n")
    project.deploy()
    sent = [rx_bytes(h) - b for h, b in zip(project.hosts, before)]
    assert all(s < 200_000 for s in sent), sent  # the artifact is ~2 MB; one 40 kB file changed
    d = project.deploy_to
    for index in range(3):
        assert project.read(index, "current/index.html") == "hello v2\n"
        assert project.read(index, "releases/1/index.html") == "hello\n"
        assert not project.exists(index, "releases/2/gone.txt")
        assert project.exists(index, "releases/1/gone.txt")
        assert project.sh(index, f"stat -c %a {d}/releases/2/tool.sh").strip() == "755"
        assert project.sh(index, f"stat -c %a {d}/releases/1/tool.sh").strip() == "644"
        same = project.sh(
            index, f"stat -c %i {d}/releases/1/data/blob3.bin {d}/releases/2/data/blob3.bin"
        ).split()
        assert same[0] == same[1]  # unchanged: hard link, no bytes sent
        changed = project.sh(
            index, f"cmp -s {d}/releases/1/data/blob7.bin {d}/releases/2/data/blob7.bin || echo differ"
        )
        assert changed.strip() == "differ"
        assert (
            project.sh(index, f"cd {d}/releases/2 && sha256sum data/blob7.bin").split()[0]
            == __import__("hashlib").sha256((app / "data" / "blob7.bin").read_bytes()).hexdigest()
        )
    assert "delta from release 1" in "".join(project.output)


def test_identical_artifact_sends_no_payload(project):
    app = project.root / "app"
    (app / "big.bin").write_bytes(os.urandom(1_000_000))
    project.deploy()
    before = [rx_bytes(h) for h in project.hosts]
    project.deploy()
    sent = [rx_bytes(h) - b for h, b in zip(project.hosts, before)]
    assert all(s < 60_000 for s in sent), sent  # SSH handshake, probe and a tiny template tar
    for index in range(3):
        assert project.current(index) == "releases/2"
        assert "RELEASE=2" in project.read(index, "current/app.env")
        assert "RELEASE=1" in project.read(index, "releases/1/app.env")
        assert '"release": 2' in project.read(index, "releases/2/.deployer-release.json")
        assert '"release": 1' in project.read(index, "releases/1/.deployer-release.json")
    assert "identical to release 1: no upload" in "".join(project.output)


def test_delta_can_be_switched_off(project):
    """With ``artifact.delta: false`` an unchanged artifact is sent again in full, and the
    new release shares no file (no hard link) with the old one."""
    (project.root / "app" / "big.bin").write_bytes(os.urandom(400_000))
    project.set(artifact={"delta": False})
    project.deploy()
    before = [rx_bytes(h) for h in project.hosts]
    project.deploy()
    sent = [rx_bytes(h) - b for h, b in zip(project.hosts, before)]
    assert all(s > 400_000 for s in sent), sent  # the random 400 kB travelled again to every host
    d = project.deploy_to
    for index in range(3):
        inodes = project.sh(
            index,
            f"stat -c '%i %h' {d}/releases/1/big.bin {d}/releases/2/big.bin "
            f"{d}/releases/1/index.html {d}/releases/2/index.html",
        ).split("\n")
        (i1, n1), (i2, n2), (i3, n3), (i4, n4) = (line.split() for line in inodes[:4])
        assert i1 != i2 and i3 != i4, inodes  # separate files, not links to release 1
        assert n1 == n2 == n3 == n4 == "1", inodes
        assert project.read(index, "releases/2/index.html") == "hello\n"
    assert "full upload" in "".join(project.output).split("release 2")[-1]


@pytest.mark.parametrize("change", [False, True], ids=["identical", "delta"])
def test_files_written_by_hooks_never_leak_into_or_back_from_the_next_release(project, change):
    project.set(
        hooks={
            "before_switch": [
                {
                    "command": "echo $DEPLOYER_RELEASE >> made-by-hook; mkdir -p venv && echo $DEPLOYER_RELEASE >> venv/state"
                }
            ]
        }
    )
    project.deploy()
    if change:
        (project.root / "app" / "index.html").write_text("v2\n")
    project.deploy()
    for index in range(3):
        assert project.read(index, "releases/1/made-by-hook") == "1\n"
        assert project.read(index, "releases/1/venv/state") == "1\n"
        assert project.read(index, "releases/2/made-by-hook") == "2\n"
        assert project.read(index, "releases/2/venv/state") == "2\n"


def _recording_opener(scripts: list[str]):
    """Sessions as the deploy opens them, with every script they run recorded."""
    from deployer.transport import open_session

    def opener(config, host):
        session = open_session(config, host)
        run = session.run

        def recorded(script, stdin=None, read_only=False):
            scripts.append(script)
            return run(script, stdin, read_only)

        session.run = recorded
        return session

    return opener


@pytest.mark.parametrize("cache", ["known", "empty"])
def test_a_delta_reads_the_base_manifest_back_only_when_this_machine_has_no_record(
    project, cache, tmp_path, monkeypatch
):
    """The base release was made from an artifact this machine inspected: its manifest is
    known here by sha256, so nothing is read back from the host (one round trip less);
    from an empty cache (another machine deployed it) the host's stored one is read."""
    from deployer.layout import MANIFEST_NAME
    from deployer.recipes.deploy import deploy

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (project.root / "app" / "big.bin").write_bytes(os.urandom(300_000))
    project.deploy()
    if cache == "empty":
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other-machine"))
    (project.root / "app" / "index.html").write_text("v2\n")
    scripts: list[str] = []
    deploy(project.config(), project.reporter(), opener=_recording_opener(scripts))
    reads = [s for s in scripts if MANIFEST_NAME in s and "base64" in s]
    assert len(reads) == (0 if cache == "known" else 3)
    for index in range(3):
        assert project.read(index, "current/index.html") == "v2\n"
        assert (
            project.sh(
                index,
                f"cmp {project.deploy_to}/releases/1/big.bin {project.deploy_to}/current/big.bin; echo $?",
            ).strip()
            == "0"
        )
    assert "".join(project.output).count("delta from release 1") == 3


def test_a_base_release_whose_manifest_is_gone_gets_a_full_upload(project, tmp_path, monkeypatch):
    """This machine knows the base's manifest, but the host's copy was removed: the host
    refuses the delta (it links only what its own manifest lists) and gets the whole artifact."""
    from deployer.layout import MANIFEST_NAME

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    project.deploy()
    project.sh(0, f"rm {project.deploy_to}/releases/1/{MANIFEST_NAME}")
    (project.root / "app" / "index.html").write_text("v2\n")
    project.deploy()
    for index in range(3):
        assert project.current(index) == "releases/2"
        assert project.read(index, "current/index.html") == "v2\n"
    out = "".join(project.output)
    assert out.count("delta from release 1") == 2
    assert "release 1 has no usable manifest on the host" in out
