"""Locks, atomic switches, host keys, bad artifacts and bad templates, on real SSH servers."""

from __future__ import annotations

import io
import json
import subprocess
import tarfile
import threading
import time

import pytest

from deployer import commands
from deployer.config import load
from deployer.errors import ArtifactError, ConfigError, HostUnreachable
from deployer.layout import Layout
from deployer.transport import connect

pytestmark = pytest.mark.ssh


def test_two_deploys_at_once_exactly_one_wins(project):
    """Both start together and race for the lock. The winner's before_switch hook waits at
    a barrier the test opens only once the other deploy has ended: the two really overlap,
    however slow the machine."""
    project.set(hooks={"before_switch": [{"command": project.barrier_hook("both-started")}]})
    results = []

    def run():
        results.append(project.invoke("deploy", "--stage=test"))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        project.wait_until(
            lambda: len(results) == 2 or (len(results) == 1 and project.reached("both-started")),
            "one deploy to be refused while the other waits in its hook")
    finally:
        project.release_barrier("both-started")
        for t in threads:
            t.join()
    codes = sorted(r.returncode for r in results)
    assert codes == [0, 3], [r.stderr for r in results]
    loser = next(r for r in results if r.returncode == 3)
    assert "deploy lock for stage test held by" in loser.stderr
    assert "Traceback" not in loser.stderr
    for index in range(3):
        assert project.current(index) == "releases/1"
        assert project.release_dirs(index) == [1]
        assert not project.lock_held(index)


def test_stale_lock_blocks_deploy_until_unlock(project):
    info = json.dumps({"holder": "alice@laptop", "pid": 4242, "since": int(time.time()) - 600, "command": "deploy"})
    project.sh(1, f"mkdir -p {project.deploy_to}/.deployer/lock && echo '{info}' > {project.deploy_to}/.deployer/lock/info")
    blocked = project.invoke("deploy", "--stage=test")
    assert blocked.returncode == 3
    assert f"host {project.hosts[1].name}: deploy lock" in blocked.stderr
    assert "alice@laptop (pid 4242, deploy) for 10m" in blocked.stderr
    lock_info = f"{project.deploy_to}/.deployer/lock/info"
    for index in range(3):  # nothing created, and the other hosts' locks were given back
        assert project.release_dirs(index) == []
        assert project.lock_held(index) == (index == 1)
    assert json.loads(project.sh(1, f"cat {lock_info}")) == json.loads(info)  # alice's lock, untouched
    unlocked = project.invoke("unlock", "--stage=test")
    assert unlocked.returncode == 0, unlocked.stderr
    assert "alice@laptop" in unlocked.stdout
    assert not project.lock_held(1)
    assert project.invoke("deploy", "--stage=test").returncode == 0
    assert project.current(1) == "releases/1"


READER = """echo ready > {d}/reader.ready; n=0; bad=0; seen1=0; seen2=0
while [ ! -e {d}/stop ]; do
  [ -f {d}/current/index.html ] || bad=$((bad+1))
  case $(readlink {d}/current) in releases/1) seen1=1;; releases/2) seen2=1;; esac
  n=$((n+1)); [ $((n % 10)) -ne 0 ] || echo $n > {d}/reader.progress
done
echo $n $bad $seen1 $seen2"""


def test_current_never_missing_or_dangling_during_200_switches(project):
    project.deploy()
    project.deploy()
    d = project.deploy_to
    reader = subprocess.Popen(
        ["docker", "exec", "-u", "deploy", project.hosts[0].container_id, "sh", "-c", READER.format(d=d)],
        stdout=subprocess.PIPE, text=True,
    )
    config = load(project.root, "test")
    session = connect(config, config.hosts[0])
    layout = Layout(config.deploy_to)

    def progress() -> int:
        out = session.run(f"cat {d}/reader.progress 2>/dev/null || true").stdout.strip()
        return int(out) if out.isdigit() else 0

    try:
        project.wait_until(lambda: project.exists(0, "reader.ready"), "the reader to start")
        checkpoint = progress()
        for i in range(200):
            result = session.run(commands.switch(layout, 1 + i % 2, f"t{i}"))
            assert result.ok, result.stderr
            if i % 20 == 19:  # the reader is never starved for a whole run of switches
                project.wait_until(lambda: progress() > checkpoint, "the reader to read again")
                checkpoint = progress()
    finally:
        session.run(f"touch {d}/stop")
        session.close()
    reads, bad, seen1, seen2 = map(int, reader.communicate(timeout=60)[0].split())
    assert bad == 0, (reads, bad)
    assert (seen1, seen2) == (1, 1), "the reader saw current on both releases: it read while switches ran"
    assert project.sh(0, f"ls -a {d} | grep -c tmp || true").strip() == "0"


def test_unknown_host_key_is_refused_under_strict(project):
    (project.root / "known_hosts").write_text("")
    before = [project.snapshot(i) for i in range(3)]
    result = project.invoke("deploy", "--stage=test")
    assert result.returncode == 4
    assert "unknown host key ssh-ed25519 SHA256:" in result.stderr and "strict" in result.stderr
    assert "Traceback" not in result.stderr
    assert [project.snapshot(i) for i in range(3)] == before


def test_accept_new_records_unknown_keys(project):
    known = project.root / "known_hosts"
    known.write_text("")
    project.set(ssh={"host_key_policy": "accept-new"})
    project.deploy()
    recorded = known.read_text()
    for host in project.hosts:
        assert host.host_key_line() in recorded
    assert sorted(recorded.splitlines()) == sorted(h.host_key_line() for h in project.hosts)  # each key once
    project.set(ssh={"host_key_policy": "strict"})
    project.deploy()  # the recorded keys are now trusted under strict
    assert [project.current(i) for i in range(3)] == ["releases/2"] * 3
    assert known.read_text() == recorded  # strict never writes


@pytest.mark.parametrize("policy", ["strict", "accept-new"])
def test_changed_host_key_is_refused_under_every_policy(project, policy):
    known = project.root / "known_hosts"
    lines = known.read_text().splitlines()
    # host 0 claims host 1's key: what a man in the middle would look like
    lines[0] = lines[0].split()[0] + " " + " ".join(lines[1].split()[1:])
    known.write_text("\n".join(lines) + "\n")
    project.set(ssh={"host_key_policy": policy})
    with pytest.raises(HostUnreachable, match="host key CHANGED: expected SHA256:.*offered SHA256:"):
        project.deploy()
    assert known.read_text().splitlines()[0] == lines[0]
    assert project.release_dirs(1) == []


def _write_tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, target in members:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = b"x"
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                info.type = tarfile.SYMTYPE if kind == "symlink" else tarfile.LNKTYPE
                info.linkname = target
                tar.addfile(info)


@pytest.mark.parametrize(
    "member, reason",
    [
        (("../x", "file", None), "'..' in path"),
        (("/etc/x", "file", None), "absolute path"),
        (("sub/evil", "symlink", "../../etc/passwd"), "symlink pointing outside"),
        (("abs", "symlink", "/etc/passwd"), "symlink to absolute path"),
        (("hard", "hardlink", "../../etc/passwd"), "hard link pointing outside"),
    ],
)
def test_unsafe_artifacts_are_refused_before_any_host_changes(project, member, reason):
    _write_tar(project.root / "bad.tar.gz", [("ok.txt", "file", None), member])
    project.set(artifact={"path": "bad.tar.gz"})
    before = [project.snapshot(i) for i in range(3)]
    with pytest.raises(ArtifactError, match=reason):
        project.deploy()
    # The SSH handshakes run alongside the local checks, but nothing is changed on a host.
    assert [project.snapshot(i) for i in range(3)] == before


def test_tarball_artifact_deploys(project):
    _write_tar(project.root / "good.tar.gz", [("index.html", "file", None), ("link", "symlink", "index.html")])
    project.set(artifact={"path": "good.tar.gz"})
    project.deploy()
    assert project.read(2, "current/link") == "x"


def test_missing_template_variable_fails_before_any_host_changes(project):
    (project.root / "templates" / "app.env.j2").write_text("A=1\nB={{ vars.nope }}\n")
    before = [project.snapshot(i) for i in range(3)]
    with pytest.raises(ConfigError, match=r"templates/app.env.j2: line 2: .*'nope'"):
        project.deploy()
    assert [project.snapshot(i) for i in range(3)] == before


def test_unreachable_host_fails_before_anything_changes(project, ssh_hosts):
    project.set(hosts=[{"host": "127.0.0.1", "port": h.port, "user": "deploy"} for h in ssh_hosts] +
                [{"host": "127.0.0.1", "port": 1, "user": "deploy"}])
    result = project.invoke("deploy", "--stage=test")
    assert result.returncode == 4
    assert "host 127.0.0.1:1: cannot connect" in result.stderr
    assert result.stderr.count("\n") == 1
    assert all(project.release_dirs(i) == [] for i in range(3))
