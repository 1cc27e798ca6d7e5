"""Maintenance mode through nginx (recipe A's server block): 503 with the page and its
reason while on, the health path still answered, a deploy meanwhile succeeds, 200 after off.
What a user sees is read with real HTTP requests; the state on the host with docker exec."""

from __future__ import annotations

import json

import pytest
from shapes import MAINTENANCE_SHAPE, MAINTENANCE_STATE, RELEASES_SHAPE, conforms
from test_stack_gunicorn import deploy_ok

pytestmark = [pytest.mark.stack, pytest.mark.ssh]


def test_maintenance_on_deploy_off(gunicorn_app):
    app, host = gunicorn_app, gunicorn_app.hosts[0]
    deploy_ok(app)
    assert host.get("/") == (200, "release 1\n")
    on = app.invoke("maintenance", "--stage=test", "--on", "--reason=Upgrading the <database>", "--json")
    assert on.returncode == 0, on.stderr
    assert conforms(json.loads(on.stdout), MAINTENANCE_SHAPE) and json.loads(on.stdout)["maintenance"] == "on"
    status, page = host.get("/")
    assert status == 503 and "Upgrading the &lt;database&gt;" in page and "<title>hello: down" in page
    assert host.get("/some/page")[0] == 503
    assert host.get("/up") == (200, "release 1\n")  # health checks pass through
    # Maintenance takes no lock: a deploy goes through meanwhile, and the page stays up.
    assert not app.lock_held()
    deploy_ok(app)
    assert host.get("/up") == (200, "release 2\n") and host.get("/")[0] == 503
    listing = json.loads(app.invoke("releases", "--stage=test", "--json").stdout)
    assert conforms(listing, RELEASES_SHAPE)
    state = listing["hosts"][host.name]["maintenance"]
    assert conforms(state, MAINTENANCE_STATE) and state["reason"] == "Upgrading the <database>"
    shown = app.invoke("releases", "--stage=test")
    assert "maintenance on since " in shown.stdout and "(Upgrading the <database>)" in shown.stdout
    checked = app.invoke("check", "--stage=test")
    assert checked.returncode == 0 and "maintenance on since" in checked.stdout, checked.stdout
    off = app.invoke("maintenance", "--stage=test", "--off")
    assert off.returncode == 0, off.stderr
    assert host.get("/") == (200, "release 2\n")
    assert not app.exists(0, "shared/maintenance.html") and not app.exists(0, ".deployer/maintenance.json")
    events = [(e["event"], e.get("status")) for e in app.log() if e["event"] == "maintenance"]
    assert events == [("maintenance", "on"), ("maintenance", "off")]
    history = app.invoke("history", "--stage=test")
    assert history.stdout.count("maintenance") == 2


def test_dry_run_and_usage_errors_change_nothing(gunicorn_app):
    app, host = gunicorn_app, gunicorn_app.hosts[0]
    deploy_ok(app)
    before = app.snapshot()
    dry = app.invoke("maintenance", "--stage=test", "--on", "--dry-run")
    assert dry.returncode == 0 and "maintenance.html" in dry.stdout, dry.stdout
    for args, message in [((), "give either --on"), (("--on", "--off"), "give either --on"),
                          (("--off", "--reason=x"), "give either --on")]:  # fmt: skip
        bad = app.invoke("maintenance", "--stage=test", *args)
        assert bad.returncode == 2 and message in bad.stderr and "Traceback" not in bad.stderr
    assert app.snapshot() == before and host.get("/")[0] == 200
