"""Scheduled cleanup: the files installed on the host, and the server-side cleanup itself."""

from __future__ import annotations

import pytest

from deployer.config import Schedule, load
from deployer.recipes.schedule import render


def test_systemd_timer_and_cron_line_are_rendered(local_project):
    config = load(local_project.root, "test")
    files = render(config, Schedule(calendar="hourly", cron="5 * * * *"))
    assert "OnCalendar=hourly" in files["cleanup.timer"] and "WantedBy=timers.target" in files["cleanup.timer"]
    assert f"ExecStart=/bin/sh {config.deploy_to}/.deployer/cleanup.sh" in files["cleanup.service"]
    assert files["cron"].startswith(f"5 * * * * /bin/sh {config.deploy_to}/.deployer/cleanup.sh >> ")
    assert files["cron"].rstrip().endswith(f"# deployer-cleanup:{config.deploy_to}")
    assert "KEEP=5" in files["cleanup.sh"]


def test_project_templates_override_the_defaults(local_project):
    folder = local_project.root / "templates" / "deployer"
    folder.mkdir()
    (folder / "cleanup.timer.j2").write_text("custom {{ calendar }}\n")
    assert render(load(local_project.root, "test"), Schedule())["cleanup.timer"] == "custom daily\n"


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
        assert f"*/10 * * * * /bin/sh {d}/.deployer/cleanup.sh >> {d}/.deployer/cleanup.log 2>&1 # deployer-cleanup:{d}" in crontab
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
    gone = p.invoke("cleanup", "--stage=test", "--unschedule")
    assert gone.returncode == 0, gone.stderr
    for index in range(3):
        assert "deployer-cleanup" not in p.sh(index, "crontab -l 2>/dev/null || true")
        assert not p.exists(index, ".deployer/cleanup.sh")
