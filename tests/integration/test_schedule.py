"""Scheduled cleanup: the files installed on the host, and the server-side cleanup itself."""

from __future__ import annotations

import subprocess

import pytest

from deployer.config import Schedule, load
from deployer.recipes.schedule import render


def test_systemd_timer_and_cron_line_are_rendered(local_project):
    config = load(local_project.root, "test")
    files = render(config, Schedule(calendar="hourly", cron="5 * * * *"))
    assert (
        "OnCalendar=hourly" in files["cleanup.timer"] and "WantedBy=timers.target" in files["cleanup.timer"]
    )
    assert f"ExecStart=/bin/sh {config.deploy_to}/.deployer/cleanup.sh" in files["cleanup.service"]
    assert files["cron"].startswith(f"5 * * * * /bin/sh {config.deploy_to}/.deployer/cleanup.sh >> ")
    assert files["cron"].rstrip().endswith(f"# deployer-cleanup:{config.deploy_to}")
    assert "KEEP=5" in files["cleanup.sh"]


def test_project_templates_override_the_defaults(local_project):
    folder = local_project.root / "templates" / "deployer"
    folder.mkdir()
    (folder / "cleanup.timer.j2").write_text("custom {{ calendar }}\n")
    assert render(load(local_project.root, "test"), Schedule())["cleanup.timer"] == "custom daily\n"


def test_the_scheduled_cleanup_drops_snapshots_with_the_releases_that_needed_them(local_project, tmp_path):
    """Releases 1-4, current 4, keep 2: releases 3 and 4 stay, so only 4.dump can still serve a
    rollback (to 3); 1-3's go. A name we never write is left alone."""
    local_project.set(keep_releases=2)
    folder = tmp_path / "srv"
    for n in range(1, 5):
        (folder / "releases" / str(n)).mkdir(parents=True)
        (folder / "releases" / str(n) / ".deployer-release.json").write_text("{}")
    (folder / ".deployer" / "snapshots").mkdir(parents=True)
    for name in ("1.dump", "2.dump", "3.dump", "4.dump", "notes.dump"):
        (folder / ".deployer" / "snapshots" / name).write_text("data")
    (folder / "current").symlink_to("releases/4")
    config = load(local_project.root, "test")
    script = render(config, Schedule())["cleanup.sh"].replace(f"cd {config.deploy_to} ", f"cd {folder} ", 1)
    assert f"cd {folder} " in script
    subprocess.run(["sh", "-c", script], check=True, capture_output=True)
    assert sorted(p.name for p in (folder / "releases").iterdir()) == ["3", "4"]
    assert sorted(p.name for p in (folder / ".deployer" / "snapshots").iterdir()) == ["4.dump", "notes.dump"]


@pytest.mark.ssh
def test_cron_schedule_installs_runs_and_unschedules(project):
    p = project
    for _ in range(5):
        p.deploy()
    p.rollback()  # current 4; 5 was rolled back from; the rollback target is 3
    p.set(keep_releases=2, schedule={"via": "cron", "cron": "*/10 * * * *"})
    result = p.invoke("cleanup", "--stage=test", "--schedule")
    assert result.returncode == 0, result.stdout + result.stderr
    d = p.deploy_to
    for index in range(3):
        crontab = p.sh(index, "crontab -l")
        assert (
            f"*/10 * * * * /bin/sh {d}/.deployer/cleanup.sh >> {d}/.deployer/cleanup.log 2>&1 # deployer-cleanup:{d}"
            in crontab
        )
        assert p.sh(index, f"stat -c %a {d}/.deployer/cleanup.sh").strip() == "755"
    # Run what cron would run, on one host.
    p.sh(0, f"/bin/sh {d}/.deployer/cleanup.sh")
    assert p.release_dirs(0) == [3, 4, 5]  # newest 2 up to current, plus newer-than-current 5
    assert p.current(0) == "releases/4"
    assert p.log(0)[-1]["event"] == "cleanup" and p.log(0)[-1]["detail"] == "removed 2,1"
    assert not p.lock_held(0)
    # A held deploy lock makes it skip.
    p.sh(1, f"mkdir {d}/.deployer/lock")
    assert "deploy lock held, skipping" in p.sh(1, f"/bin/sh {d}/.deployer/cleanup.sh")
    assert p.release_dirs(1) == [1, 2, 3, 4, 5]
    p.sh(1, f"rmdir {d}/.deployer/lock")
    # Both flags at once: refused before any host is contacted; the schedule stays.
    logins = [h.logins() for h in p.hosts]
    both = p.invoke("cleanup", "--stage=test", "--schedule", "--unschedule")
    assert both.returncode == 2
    assert both.stderr.strip() == "error: cleanup: choose one of --schedule and --unschedule"
    assert [h.logins() for h in p.hosts] == logins
    for index in range(3):
        assert f"# deployer-cleanup:{d}" in p.sh(index, "crontab -l")
        assert p.exists(index, ".deployer/cleanup.sh")
    gone = p.invoke("cleanup", "--stage=test", "--unschedule")
    assert gone.returncode == 0, gone.stderr
    for index in range(3):
        assert "deployer-cleanup" not in p.sh(index, "crontab -l 2>/dev/null || true")
        assert not p.exists(index, ".deployer/cleanup.sh")


# -- via: auto, on a host that has systemd and on one that has not -------------------------------

# A stand-in for systemd's systemctl (the test image has no systemd as PID 1): it answers
# the detection (`systemctl --user show-environment`) and records every call, so the test
# proves which host-side commands the tool runs and which unit files it installs.
FAKE_SYSTEMCTL = """#!/bin/sh
echo "$*" >> /tmp/systemctl-calls
case "$*" in *show-environment*) echo HOME=/home/deploy;; esac
exit 0
"""


@pytest.fixture
def lone_host(ssh_image, ssh_key):
    """A host of its own: the fake systemctl must not change what other tests' hosts detect."""
    from sshd.hosts import start_hosts

    host = start_hosts(ssh_image, (ssh_key.parent / "id_ed25519.pub").read_text().strip(), 1)[0]
    yield host
    host.stop()
    subprocess.run(["docker", "rm", "-f", "-v", host.container_id], capture_output=True)


@pytest.mark.ssh
def test_auto_installs_a_systemd_timer_where_systemd_answers_else_cron(lone_host, ssh_key, tmp_path):
    from project import Project

    p = Project.create(tmp_path, [lone_host], ssh_key)
    for _ in range(4):
        p.deploy()
    p.set(keep_releases=2, schedule={"via": "auto", "calendar": "hourly"})
    d, unit = p.deploy_to, "deployer-cleanup-demo-test"
    units = "/home/deploy/.config/systemd/user"
    fake = "/usr/local/bin/systemctl"
    install = f"cat > {fake} <<'EOF'\n{FAKE_SYSTEMCTL}EOF\nchmod 755 {fake}"
    lone_host.sh(install, user="root")
    result = p.invoke("cleanup", "--stage=test", "--schedule")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "systemd: cleanup hourly, keeping 2" in result.stdout, result.stdout
    assert lone_host.sh("cat /tmp/systemctl-calls").splitlines() == [
        "--user show-environment",
        "--user daemon-reload",
        f"--user enable --now {unit}.timer",
    ]
    timer = lone_host.sh(f"cat {units}/{unit}.timer")
    service = lone_host.sh(f"cat {units}/{unit}.service")
    assert "OnCalendar=hourly" in timer and "WantedBy=timers.target" in timer
    exec_start = next(line for line in service.splitlines() if line.startswith("ExecStart="))
    assert exec_start == f"ExecStart=/bin/sh {d}/.deployer/cleanup.sh"
    assert lone_host.sh("crontab -l 2>/dev/null || true").strip() == ""  # not cron as well
    # Run what the timer would run, as the user systemd --user runs it for.
    lone_host.sh(exec_start.removeprefix("ExecStart="))
    assert p.release_dirs(0) == [3, 4] and p.current(0) == "releases/4"

    gone = p.invoke("cleanup", "--stage=test", "--unschedule")
    assert gone.returncode == 0, gone.stderr
    assert lone_host.sh(f"ls {units}").split() == []
    assert f"--user disable --now {unit}.timer" in lone_host.sh("cat /tmp/systemctl-calls")
    assert not p.exists(0, ".deployer/cleanup.sh")

    lone_host.sh(f"rm {fake}", user="root")  # a host without systemd: cron
    result = p.invoke("cleanup", "--stage=test", "--schedule")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cron: cleanup 17 3 * * *" in result.stdout, result.stdout
    assert f"17 3 * * * /bin/sh {d}/.deployer/cleanup.sh" in lone_host.sh("crontab -l")
    assert lone_host.sh(f"ls {units}").split() == []
