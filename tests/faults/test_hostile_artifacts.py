"""Hostile artifacts and hand-edited releases, against a real SSH server (issue 10).

Everything is checked on the host with ``docker exec`` as root: which files changed
anywhere on its file system since a marker (``find / -newer``), whether a planted victim
outside ``deploy_to`` survived, and file modes (``stat``). The in-process catalogue
(random link tables judged by the kernel, every refusal message) is
tests/unit/test_artifact_trust.py; here each class of attack goes through the real CLI.
"""

from __future__ import annotations

import base64
import gzip
import io
import os
import tarfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from project import Project

from .support import assert_one_line_error, remove_containers

pytestmark = pytest.mark.ssh

MANIFEST = ".deployer-manifest.gz"
# Written whatever a deploy does: sshd logs each login, and the marker itself.
NOISE = ("/var/log/sshd.log", "/tmp/marker-")


@pytest.fixture(scope="module")
def host(ssh_image, ssh_key):
    """A server of this module's own, where root may log in with the test key too (as
    deploy does): unpacking as root is where tar would keep an archive's modes."""
    from sshd.hosts import start_hosts

    (server,) = start_hosts(ssh_image, (ssh_key.parent / "id_ed25519.pub").read_text().strip(), 1)
    server.sh("mkdir -p /root/.ssh && cp /home/deploy/.ssh/authorized_keys /root/.ssh/", user="root")
    yield server
    remove_containers([server])


def make_project(tmp_path: Path, host, ssh_key, user: str = "deploy") -> Project:
    """A project whose deploy_to has a parent of its own (where the issue's chain leads),
    so what each case did on the host can be told apart."""
    project = Project.create(tmp_path / uuid.uuid4().hex[:6], [host], ssh_key)
    top = "/srv" if user == "root" else "/home/deploy/apps"
    project.deploy_to = f"{top}/{uuid.uuid4().hex[:10]}/site"
    project.set(deploy_to=project.deploy_to, hosts=[{"host": "127.0.0.1", "port": host.port, "user": user}])
    return project


def marker(host) -> str:
    path = f"/tmp/marker-{uuid.uuid4().hex[:8]}"
    host.sh(f"touch {path}", user="root")
    return path


def changed_since(host, mark: str) -> list[str]:
    """Every path on the host's file system modified after ``mark``, system noise aside."""
    out = host.sh(
        "find / -xdev \\( -path /proc -o -path /sys -o -path /dev -o -path /run \\) -prune "
        f"-o -newer {mark} -print",
        user="root",
    )
    return sorted(p for p in out.splitlines() if p and not p.startswith(NOISE))


def plant_victim(host, project: Project) -> str:
    """A folder beside deploy_to (in its parent, where the issue's chain leads)."""
    victim = str(Path(project.deploy_to).parent / "victim")
    host.sh(f"mkdir -p {victim}/uploads && echo keep > {victim}/uploads/precious")  # as deploy
    return victim


def intact(host, victim: str) -> bool:
    return host.sh(f"cat {victim}/uploads/precious 2>/dev/null || true").strip() == "keep"


# -- the catalogue: each refused before any host changes ----------------------------------------

ISSUE_CHAIN = [("d1/l", ".."), ("d1/l2", "l/.."), ("d1/l3", "l2/../.."), ("d1/out", "l3/victim")]


def _member(kind: str, name: str, extra) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    if kind == "f":
        info.mode, info.size = extra, 1
        return info, b"x"
    if kind == "d":
        info.type, info.mode = tarfile.DIRTYPE, extra
    else:
        info.type = tarfile.SYMTYPE if kind == "l" else tarfile.LNKTYPE
        info.linkname = extra
    return info, None


def _tar(path: Path, rows: list[tuple]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for row in [("f", "index.html", 0o644), ("d", "d1", 0o755), *rows]:
            info, data = _member(*row)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)


CANARY = f"/tmp/PWNED-{uuid.uuid4().hex[:8]}"
TARBALLS = {
    "issue-chain-config": (
        [*(("l", n, t) for n, t in ISSUE_CHAIN), ("l", "config", "d1/out")],
        "symlink chain leads outside the release",
    ),
    "chain-loop": ([("l", "a", "b"), ("l", "b", "c"), ("l", "c", "a/x")], "more than 40 symlinks"),
    "chain-41-hops": ([("l", f"c{i}", f"c{i + 1}") for i in range(41)], "more than 40 symlinks"),
    "hardlink-to-a-symlink-moved-up": (
        [("d", "d1/d2", 0o755), ("l", "d1/d2/up", "../.."), ("h", "config", "d1/d2/up")],
        "'config': symlink chain leads outside",
    ),
    "hardlink-through-a-chain": (
        [*(("l", n, t) for n, t in ISSUE_CHAIN[:3]), ("h", "stolen", "d1/l3/etc/passwd")],
        "leads outside the release",
    ),
    "dir-then-link-same-name": ([("d", "config", 0o755), ("l", "config", "d1")], "appears twice"),
    "setuid-file": ([("f", "bin-su", 0o4755)], "mode 4755 has a setuid"),
    "setgid-file": ([("f", "bin-sg", 0o2711)], "mode 2711 has a setuid"),
    "sticky-dir": ([("d", "scratch", 0o1777)], "mode 1777 has a setuid"),
    "world-writable-file": ([("f", "open.txt", 0o666)], "mode 0666 is world-writable"),
    "world-writable-dir": ([("d", "uploads", 0o777)], "mode 0777 is world-writable"),
    "name-rf": ([("f", "-rf", 0o644)], "name starts with '-'"),
    "name-checkpoint-action": ([("f", f"--checkpoint-action=exec=touch {CANARY}", 0o644)], "starts with '-'"),
    "dir-named-like-an-option": ([("d", "--no-same-owner", 0o755), ("f", "--no-same-owner/x", 0o644)], "'-'"),
}


def _directory_chain(project: Project) -> str:
    """The issue's chain as real symlinks in a directory artifact (packed by the tool)."""
    app = project.root / "app"
    (app / "d1").mkdir()
    for name, target in [*ISSUE_CHAIN, ("config", "d1/out")]:
        os.symlink(target, app / name)
    return "app"


@pytest.fixture(scope="module")
def refused(host, ssh_key, tmp_path_factory):
    """Every catalogue case through the real CLI (four at a time, one project each), with
    ``shared.dirs: [config/uploads]`` so a chain that got through would delete and link
    outside deploy_to. Returns ({case: (result, project)}, paths changed on the host)."""
    tmp = tmp_path_factory.mktemp("hostile-artifacts")

    def prepare(case: str) -> tuple[str, Project]:
        project = make_project(tmp, host, ssh_key)
        if case == "directory-issue-chain":
            path = _directory_chain(project)
        else:
            path = "a.tgz"
            _tar(project.root / path, TARBALLS[case][0])
        project.set(artifact={"path": path}, shared={"dirs": ["config/uploads"]})
        return case, project

    prepared = [prepare(case) for case in [*TARBALLS, "directory-issue-chain"]]
    victims = {case: plant_victim(host, p) for case, p in prepared}
    mark = marker(host)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda item: item[1].invoke("deploy", "--stage=test"), prepared))
    changed = changed_since(host, mark)
    return {
        case: (result, project, victims[case]) for (case, project), result in zip(prepared, results)
    }, changed


@pytest.mark.parametrize("case", [*TARBALLS, "directory-issue-chain"])
def test_hostile_artifact_is_refused_before_the_host_changes(refused, host, case):
    outcomes, changed = refused
    result, project, victim = outcomes[case]
    assert intact(host, victim)
    own = str(Path(project.deploy_to).parent)
    assert [p for p in changed if p == own or p.startswith(own + "/")] == []  # no deploy_to, victim untouched
    others = tuple(str(Path(p.deploy_to).parent) for _, p, _ in outcomes.values())
    assert [p for p in changed if not p.startswith(others)] == []  # nothing anywhere else on the host
    reason = TARBALLS[case][1] if case in TARBALLS else "symlink chain leads outside the release"
    assert_one_line_error(result, 2, "error: artifact ", "refused: member ", reason)
    assert host.sh(f"test -e {CANARY} && echo yes || true", user="root").strip() == ""


# -- modes in a directory artifact: normalised, checked on the host as root ----------------------


def test_modes_of_a_directory_artifact_are_normalised_even_when_root_unpacks(host, ssh_key, tmp_path):
    project = make_project(tmp_path, host, ssh_key, user="root")
    app = project.root / "app"
    (app / "scratch").mkdir()
    for name, mode in [("su", 0o4755), ("sg", 0o2755), ("open", 0o666), ("plain", 0o640)]:
        (app / name).write_text(name)
        os.chmod(app / name, mode)
    os.chmod(app / "scratch", 0o1777)
    result = project.invoke("deploy", "--stage=test")
    assert result.returncode == 0, result.stderr
    release = f"{project.deploy_to}/releases/1"
    modes = host.sh(f"cd {release} && stat -c '%a %n' su sg open plain scratch bin/migrate", user="root")
    assert modes.splitlines() == [
        "755 su",
        "755 sg",
        "644 open",
        "640 plain",
        "755 scratch",
        "755 bin/migrate",
    ]
    special = host.sh(f"find {project.deploy_to} ! -type l -perm /7002 -print", user="root")
    assert special == ""  # no setuid, setgid, sticky or world-writable path under deploy_to


# -- a tampered base release on the host, then identical and delta deploys ------------------------

HOSTILE_LINES = [
    "d - 755 ../../../escaped-by-dotdot",
    "d - 755 d1/../../../../escaped-deeper",
    "d - 755 /home/deploy/escaped-absolute",
    "d - 755 -p",
    "d - 755 --version",
    "f 0 644 --checkpoint-action=exec=touch {canary}",
]


def _edit_manifest(host, release: str, edit) -> None:
    """Rewrite a release's manifest on the host, as its owner (a hand edit)."""
    raw = host.sh(f"base64 < {release}/{MANIFEST}")
    lines = gzip.decompress(base64.b64decode(raw)).decode().splitlines()
    data = base64.b64encode(gzip.compress(("\n".join(edit(lines)) + "\n").encode())).decode()
    host.sh(f"echo {data} | base64 -d > {release}/{MANIFEST}")


def _allowed(project: Project, number: int, path: str) -> bool:
    """Paths a deploy of release ``number`` may change: that release, the tool's state, shared/."""
    d = project.deploy_to
    inside = (f"{d}/releases/{number}", f"{d}/.deployer", f"{d}/shared")
    return path in (d, f"{d}/releases", f"{d}/current", *inside) or path.startswith(
        tuple(p + "/" for p in inside)
    )


def test_a_hand_edited_base_manifest_creates_nothing_outside_the_release(host, ssh_key, tmp_path):
    project = make_project(tmp_path, host, ssh_key)
    app = project.root / "app"
    for i in range(20):
        (app / f"page{i}.html").write_text(f"page {i}\n" * 400)
    assert project.invoke("deploy", "--stage=test").returncode == 0
    canary = f"/tmp/PWNED-{uuid.uuid4().hex[:8]}"
    lines = [line.format(canary=canary) for line in HOSTILE_LINES]
    _edit_manifest(host, f"{project.deploy_to}/releases/1", lambda old: old + lines)

    for number, change in [(2, None), (3, "page3.html")]:  # identical, then a delta
        if change:
            (app / change).write_text("changed\n")
        mark = marker(host)
        result = project.invoke("deploy", "--stage=test")
        assert result.returncode == 0, result.stderr
        assert ("identical to release 1" if number == 2 else "delta from release 2") in result.stdout
        changed = changed_since(host, mark)
        assert [p for p in changed if not _allowed(project, number, p)] == []
        listing = host.sh(f"cd {project.deploy_to}/releases/{number} && find . | sort")
        assert "./d1" not in listing and "-p" not in listing and "version" not in listing
        assert host.sh(f"cat {project.deploy_to}/releases/{number}/page{number}.html | head -1").strip() == (
            "changed" if number == 3 else "page 2"
        )
    escaped = host.sh(
        f"ls -d /home/deploy/escaped-* /home/deploy/apps/escaped-* {canary} 2>/dev/null || true"
    )
    assert escaped == ""


def test_a_planted_symlink_in_the_base_release_never_carries_a_shared_dir_outside(host, ssh_key, tmp_path):
    """The host turns the base release's ``config`` into a link to a folder beside
    deploy_to (and says so in its manifest); an identical redeploy reuses it, then would
    ``rm -rf`` and link ``config/uploads`` there. The host-side check refuses first."""
    project = make_project(tmp_path, host, ssh_key)
    (project.root / "app" / "config").mkdir()
    (project.root / "app" / "config" / "app.ini").write_text("x=1\n")
    project.set(shared={"dirs": ["config/uploads"]})
    assert project.invoke("deploy", "--stage=test").returncode == 0
    victim = plant_victim(host, project)
    base = f"{project.deploy_to}/releases/1"
    host.sh(f"rm -rf {base}/config && ln -s ../../../victim {base}/config")
    _edit_manifest(
        host,
        base,
        lambda old: [
            "l 0 777 config" if line.endswith(" config") else line for line in old if " config/" not in line
        ],
    )
    mark = marker(host)
    result = project.invoke("deploy", "--stage=test")
    line = assert_one_line_error(
        result,
        1,
        "prepare release failed: shared path config/uploads resolves outside release 2 (through a symlink)",
        "(release 2 removed, current unchanged)",
    )
    assert line.startswith(f"error: host {host.name}: ")
    assert intact(host, victim)
    changed = changed_since(host, mark)
    assert [p for p in changed if not _allowed(project, 2, p)] == []
    assert project.current() == "releases/1" and project.release_dirs() == [1]
