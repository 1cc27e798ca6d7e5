"""Full disks, unwritable deploy_to, hand-edited layouts, and file modes on the servers."""

from __future__ import annotations

import re
import uuid

import pytest

from .support import (
    CliRun,
    Gaps,
    assert_one_line_error,
    host_state,
    states,
    wait_for,
    world_writable,
)

pytestmark = pytest.mark.ssh


# -- the disk fills during unpack --------------------------------------------------------------


def test_disk_full_during_unpack(fresh_hosts, fresh_project, ssh_hosts, medium_artifact):
    """deploy_to is an 8 MB tmpfs on one host (a normal disk on the other); the artifact
    unpacks to 16 MB."""
    mount = f"/home/deploy/apps/full-{uuid.uuid4().hex[:8]}"
    full = fresh_hosts(1, tmpfs={mount: "size=8m,mode=1777"})[0]
    project = fresh_project([full, ssh_hosts[0]])
    project.deploy_to = mount
    project.write_stage()
    project.deploy()  # release 1 fits
    project.set(artifact={"path": str(medium_artifact)})
    result = project.invoke("deploy", "--stage=test")
    line = assert_one_line_error(result, 1, f"host {full.name}")
    for state in states(project):
        assert state.current == "releases/1" and state.current_ok, (state.name, state.current)
        assert state.numbers == [1] and not state.partial, (
            state.name,
            state.releases,
        )  # partial release removed
        assert not state.locked, (state.name, state.lock)
        assert state.log is not None and state.log.endswith("\n") and state.events, state.log  # log intact
    free_kb = int(full.sh(f"df -Pk {mount} | awk 'NR==2 {{print $4}}'").strip())
    assert free_kb > 6 * 1024, free_kb  # the half-unpacked files are gone

    check = project.invoke("check", "--stage=test")
    assert check.returncode == 1 and re.search(rf"{re.escape(full.name)}: \d+ problem", check.stdout), (
        check.stdout
    )
    assert "free" in check.stdout

    project.set(artifact={"path": "app"})
    project.deploy()
    assert {s.current for s in states(project)} == {"releases/3"}

    gaps = Gaps()
    gaps.expect(
        re.search(r"\bfree\b", line) and re.search(r"\d+(\.\d+)?\s*(B|KB|MB|GB|KiB|MiB|bytes)\b", line),
        f"the error does not state the host's free space: {line!r}",
    )
    gaps.check()


# -- deploy_to not writable by the SSH user -----------------------------------------------------


@pytest.mark.parametrize("case", ["parent-not-writable", "deploy_to-not-writable"])
def test_unwritable_deploy_to_is_a_clear_error_from_check_and_deploy(project, case):
    base = f"/srv/ro-{uuid.uuid4().hex[:8]}"
    for host in project.hosts:
        host.sh(f"mkdir -p {base} && chmod 755 {base}", user="root")  # owned by root
    project.deploy_to = f"{base}/app" if case == "parent-not-writable" else base
    project.write_stage()
    listing = f"find {base} -printf '%p %m %u\\n' | sort"
    before = [h.sh(listing, user="root") for h in project.hosts]

    check = project.invoke("check", "--stage=test")
    assert check.returncode == 1, check.stdout + check.stderr
    assert "Traceback" not in check.stderr
    for host in project.hosts:
        assert re.search(rf"{re.escape(host.name)}: \d+ problem", check.stdout), check.stdout
    assert check.stdout.count("is not writable by this user") == 3, check.stdout

    deploy = project.invoke("deploy", "--stage=test")
    assert_one_line_error(deploy, 1, "host 127.0.0.1:", project.deploy_to, "Permission denied")
    assert [h.sh(listing, user="root") for h in project.hosts] == before  # nothing created


# -- a hand-edited layout: dangling current, foreign entries ------------------------------------


def test_dangling_current_and_foreign_entries_are_reported_and_never_deleted(project):
    project.deploy()
    project.deploy()
    d = project.deploy_to
    dangling, alien = project.hosts[1], project.hosts[2]
    project.sh(1, f"rm -rf {d}/releases/2")  # current now points to a removed release
    project.sh(
        2,
        f"mkdir -p {d}/releases/foreign {d}/releases/0042 {d}/releases/.hidden && "
        f"echo keep > {d}/releases/foreign/KEEP && echo keep > {d}/releases/0042/KEEP && "
        f"echo notes > {d}/releases/README",
    )
    project.sh(0, f"echo mine > {d}/NOTES")
    foreign = "find {d} -path '*/releases/foreign*' -o -path '*/releases/0042*' -o -path '*/releases/README' -o -path '*/releases/.hidden' -o -name NOTES"
    kept = [project.sh(i, foreign.format(d=d) + " | sort") for i in range(3)]

    check = project.invoke("check", "--stage=test")
    assert check.returncode == 1 and "Traceback" not in check.stderr, check.stderr
    assert f"{dangling.name}: 1 problem" in check.stdout, check.stdout
    assert "current points to releases/2, which does not exist" in check.stdout, check.stdout
    alien_report = check.stdout.split(f"{alien.name}:")[1].splitlines()[0]
    for name in ("foreign", "0042", "README", ".hidden"):
        assert name in alien_report, alien_report

    deployed = project.invoke("deploy", "--stage=test")
    assert deployed.returncode == 0, deployed.stderr
    assert {s.current for s in states(project)} == {"releases/3"}

    before = [(s.current, s.releases) for s in states(project)]
    refused = project.invoke("rollback", "--stage=test")  # the previous release, 2, is gone on one host
    assert_one_line_error(refused, 1, "release 2", dangling.name)
    assert [(s.current, s.releases) for s in states(project)] == before

    back = project.invoke("rollback", "--stage=test", "--to=1")
    assert back.returncode == 0, back.stderr
    assert {s.current for s in states(project)} == {"releases/1"}

    project.set(keep_releases=1)
    (project.root / "app" / "fix.txt").write_text("a new artifact: the rolled-back one is refused\n")
    project.deploy()
    project.deploy()  # cleanup runs and removes old numbered releases only
    assert [project.sh(i, foreign.format(d=d) + " | sort") for i in range(3)] == kept
    assert project.read(2, "releases/foreign/KEEP") == "keep\n" and project.read(0, "NOTES") == "mine\n"


def test_failed_deploy_restores_a_hand_made_current_link(project):
    project.deploy()
    d = project.deploy_to
    project.sh(
        2,
        f"mkdir {d}/releases/handmade && echo by-hand > {d}/releases/handmade/index.html && "
        f"ln -s releases/handmade {d}/tmp-link && mv -T {d}/tmp-link {d}/current",
    )
    check = project.invoke("check", "--stage=test")
    assert "current points to 'releases/handmade', which is not a release directory" in check.stdout, (
        check.stdout
    )
    project.set(hooks={"after_switch": [{"command": "exit 1"}]})
    failed = project.invoke("deploy", "--stage=test")
    assert failed.returncode == 1, failed.stderr
    st = states(project)
    assert [s.current for s in st] == ["releases/1", "releases/1", "releases/handmade"], [
        s.current for s in st
    ]
    assert project.read(2, "current/index.html") == "by-hand\n"


# -- what the tool creates on hosts is never world-writable ------------------------------------


def test_files_the_tool_creates_are_not_world_writable_even_with_umask_000(fresh_hosts, fresh_project):
    """The SSH user's shell starts with ``umask 000`` (first line of ~/.bashrc, which bash
    reads for SSH commands), so only the tool's own umask/mode handling protects its files."""
    host = fresh_hosts(1)[0]
    host.sh("sed -i '1i umask 000' /home/deploy/.bashrc")
    project = fresh_project([host])
    (project.root / "templates" / "secret.env.j2").write_text("TOKEN=abc\n")
    project.set(
        shared={"dirs": ["log", "tmp/cache"]},
        templates=[
            {"src": "app.env.j2", "dest": "app.env"},
            {"src": "secret.env.j2", "dest": "config/secret.env", "mode": "0600"},
        ],
        hooks={"before_switch": [{"command": "umask > /home/deploy/umask-seen"}]},
    )
    project.deploy()
    assert host.sh("cat /home/deploy/umask-seen").strip() == "0000"  # the fault is really there
    (project.root / "app" / "index.html").write_text("v2\n")
    # The hook waits at a barrier (outside deploy_to: its own files are made under umask
    # 000) while the state is read with the lock held.
    barrier, folder = f"in-hook-{uuid.uuid4().hex[:6]}", "/home/deploy"
    project.set(hooks={"before_switch": [{"command": project.barrier_hook(barrier, folder=folder)}]})
    run = CliRun(project, "deploy", "--stage=test")
    try:
        wait_for(
            lambda: project.reached(barrier, folder=folder) or not run.running(),
            timeout=120,
            what="the hook to run while the lock is held",
        )
        assert run.running(), run.finish().stderr
        held = world_writable(host, project.deploy_to)
        assert host_state(host, project.deploy_to).locked
        project.release_barrier(barrier, folder=folder)
        assert run.finish(timeout=120).code == 0
    finally:
        project.release_barrier(barrier, folder=folder)
        run.kill()
    project.set(hooks={"before_switch": [], "after_switch": [{"command": "exit 1"}]})
    assert project.invoke("deploy", "--stage=test").returncode == 1  # a failed event in the log
    project.set(hooks={"after_switch": []})
    project.rollback()
    project.cleanup()
    assert held == [], held
    assert world_writable(host, project.deploy_to) == []
    modes = host.sh(
        f"stat -c '%a %n' {project.deploy_to}/.deployer/log.jsonl {project.deploy_to}/current/.deployer-release.json "
        f"{project.deploy_to}/current/config/secret.env"
    )
    assert modes.split()[::2] == ["644", "644", "600"], modes
