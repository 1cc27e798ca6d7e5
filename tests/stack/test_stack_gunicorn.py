"""Recipe A (docs/recipes.md) under load: gunicorn behind nginx, deployed with exactly
examples/gunicorn's config and hooks. While a bounded load runs against nginx's published
port, each case asserts that no request failed (connection error or 5xx) and that every
request sent after the command returned was answered by the expected release."""

from __future__ import annotations

import time

import pytest
from load import Load

pytestmark = [pytest.mark.stack, pytest.mark.ssh]


def change_app(project, old: str, new: str) -> None:
    path = project.root / "app" / "hello.py"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def deploy_ok(project, *args: str) -> None:
    done = project.invoke("deploy", "--stage=test", *args)
    assert done.returncode == 0, done.stdout + done.stderr


def under_load(project, case: str, expected: str, *command: str, code: int = 0, path: str = "/") -> dict:
    """Run one CLI command while the load runs; check it, the failures, and the answers after."""
    with Load([h.http_port for h in project.hosts], path) as load:
        done = project.invoke(*command, "--stage=test")
        returned = time.monotonic()
        load.settle(returned)
    assert done.returncode == code, done.stdout + done.stderr
    report = load.report(case)
    assert load.failures() == [], load.failures()[:5]
    assert load.after(returned) == {expected}
    return report


def test_deploy_v1_to_v2(gunicorn_app):
    deploy_ok(gunicorn_app)
    under_load(gunicorn_app, "gunicorn: deploy v1 -> v2", "release 2", "deploy")
    host = gunicorn_app.hosts[0]
    # Only release 2's gunicorn is left running; nginx's upstream link points at its socket.
    assert host.sh("readlink /srv/hello/shared/run/live.sock").strip() == "2.sock"
    assert host.sh("ls /srv/hello/shared/run/ | grep pid").split() == ["2.pid"]
    assert host.sh("pgrep -c -f '[g]unicorn.*/1[.]sock' || true").strip() == "0"


def test_rollback_v2_to_v1(gunicorn_app):
    deploy_ok(gunicorn_app)
    deploy_ok(gunicorn_app)
    under_load(gunicorn_app, "gunicorn: rollback v2 -> v1", "release 1", "rollback")
    assert gunicorn_app.current() == "releases/1"


@pytest.mark.parametrize("web_hosts", [3], indirect=True)
def test_canary_then_batches_over_three_hosts(gunicorn_app):
    gunicorn_app.set(rollout={"canary": 1, "batch_size": 1})
    deploy_ok(gunicorn_app)
    under_load(gunicorn_app, "gunicorn: canary + batches of 1 over 3 hosts, v1 -> v2", "release 2", "deploy")
    assert [gunicorn_app.current(i) for i in range(3)] == ["releases/2"] * 3


def test_deploy_whose_health_check_fails_is_switched_back(gunicorn_app):
    deploy_ok(gunicorn_app)
    # Release 2 answers every request with a 500: had any user reached it, the load would see it.
    change_app(gunicorn_app, '"200 OK"', '"500 Internal Server Error"')
    under_load(gunicorn_app, "gunicorn: health check fails, switched back", "release 1", "deploy", code=1)
    host = gunicorn_app.hosts[0]
    assert gunicorn_app.current() == "releases/1"
    assert host.sh("readlink /srv/hello/shared/run/live.sock").strip() == "1.sock"
    assert host.sh("ls /srv/hello/shared/run/ | grep pid").split() == ["1.pid"]  # 2's was stopped
    assert [e.get("status") for e in gunicorn_app.log() if e.get("release") == 2][-1] == "failed"


def test_deploy_whose_before_switch_hook_fails(gunicorn_app):
    deploy_ok(gunicorn_app)
    migrate = gunicorn_app.root / "app" / "bin" / "migrate"
    migrate.write_text("#!/bin/sh\necho 'migration 2 failed' >&2\nexit 1\n")
    under_load(gunicorn_app, "gunicorn: before_switch hook fails", "release 1", "deploy", code=1)
    assert gunicorn_app.current() == "releases/1" and gunicorn_app.release_dirs() == [1]


@pytest.mark.parametrize("web_hosts", [3], indirect=True)
def test_rollout_whose_last_batch_fails_its_health_check_moves_every_host_back(gunicorn_app):
    """The canary and batch 2 are healthy and get release 2's traffic; batch 3 is not, so
    every host is switched back and after_rollback moves traffic back to release 1 on the
    two that had moved (their release-1 gunicorn had been stopped: it is started again)."""
    app = gunicorn_app
    app.set(rollout={"canary": 1, "batch_size": 1})
    deploy_ok(app)
    change_app(
        app,
        "def application(environ, start_response):\n",
        "def application(environ, start_response):\n"
        '    if os.path.exists(os.path.join(HERE, "..", "..", "shared", "unhealthy")):\n'
        '        start_response("500 Internal Server Error", [])\n'
        '        return [b"unhealthy\\n"]\n',
    )
    app.sh(2, "touch /srv/hello/shared/unhealthy")  # only the last host: its release 2 fails /up
    report = under_load(
        app, "gunicorn: 3 hosts, last batch unhealthy, all switched back", "release 1", "deploy", code=1
    )
    assert report["answers"] == ["release 1", "release 2"]  # the canary did serve release 2 meanwhile
    for index in range(3):
        assert app.current(index) == "releases/1"
        assert app.sh(index, "readlink /srv/hello/shared/run/live.sock").strip() == "1.sock"
        assert app.sh(index, "ls /srv/hello/shared/run/ | grep pid").split() == ["1.pid"]
