"""Health-gated, batched rollouts with a real HTTP app served from `current` on each host."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from deployer.errors import DeployFailed

pytestmark = pytest.mark.ssh
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hello"


def listening(port: int) -> str:
    """A hook that waits (generous deadline, never silent) until the app answers on ``port``:
    the app starts in the background, and the health check must judge it, not its start-up."""
    return (
        f"i=0; until curl -s -o /dev/null http://127.0.0.1:{port}/; do i=$((i+1)); "
        "if [ $i -gt 600 ]; then echo 'app never listened' >&2; exit 1; fi; "
        "echo waiting; sleep 0.1; done"
    )


@pytest.fixture
def web_project(project):
    shutil.rmtree(project.root / "app")
    shutil.copytree(EXAMPLE, project.root / "app")
    port = random.randint(20000, 29999)
    serve = f"APP_PORT={port} ./bin/serve"
    project.set(
        hooks={
            "after_switch": [
                {"command": serve},
                {"command": listening(port)},
                {"command": "date +%s%N >> $DEPLOYER_DEPLOY_TO/switched_at"},
            ],
            "after_rollback": [{"command": serve}, {"command": listening(port)}],
        },
        healthcheck={"url": f"http://127.0.0.1:{port}/up", "retries": 3, "interval": 0.2, "timeout": 5},
    )
    project.port = port
    yield project
    for index in range(3):
        project.sh(
            index, f"kill $(cat {project.deploy_to}/shared/app-{port}.pid) 2>/dev/null || true", check=False
        )


def serving(project, index: int) -> str:
    return project.sh(index, f"curl -s http://127.0.0.1:{project.port}/up || true").strip()


def test_good_release_rolls_through_batches_in_order(web_project):
    """Canary, then one host per batch: each host is switched only after the previous batch
    passed its health check. The order is read on the hosts (one kernel clock for all
    containers): the after_switch hook and the health check (its ``command`` form) each
    append a timestamp."""
    p = web_project
    probe = f"curl -fsS -o /dev/null http://127.0.0.1:{p.port}/up && date +%s%N >> {p.deploy_to}/healthy_at"
    # The command form instead of the url one.
    p.overrides["healthcheck"] = {"command": probe, "retries": 3, "interval": 0.2, "timeout": 5}
    p.set(rollout={"canary": 1, "batch_size": 1})
    p.deploy()
    marks = [len(p.read(i, "healthy_at").split()) for i in range(3)]
    p.deploy()
    switched = [int(p.read(i, "switched_at").split()[-1]) for i in range(3)]
    healthy = [p.read(i, "healthy_at").split() for i in range(3)]
    assert [len(h) for h in healthy] == [m + 1 for m in marks]  # checked once per deploy, per host
    healthy_at = [int(h[-1]) for h in healthy]
    order = sorted(range(3), key=lambda i: switched[i])
    events = []
    for i in order:
        events += [("switch", i, switched[i]), ("healthy", i, healthy_at[i])]
    times = [t for _, _, t in events]
    assert times == sorted(times), events  # switch A, A healthy, switch B, B healthy, switch C, ...
    assert [p.current(i) for i in range(3)] == ["releases/2"] * 3
    assert [serving(p, i) for i in range(3)] == ["ok"] * 3
    out = "".join(p.output)
    assert "canary: " in out and "batch 3/3" in out


def test_unhealthy_canary_rolls_back_automatically_and_stops_the_rollout(web_project):
    p = web_project
    p.set(rollout={"canary": 1, "batch_size": "50%"})
    p.deploy()
    (p.root / "app" / "BROKEN").write_text("yes\n")
    with pytest.raises(DeployFailed, match=f"host {p.hosts[0].name}: health check failed for release 2"):
        p.deploy()
    for index in range(3):
        assert p.current(index) == "releases/1"
        assert serving(p, index) == "ok"  # after_rollback restarted the old release
        assert {"release": 2, "status": "failed"}.items() <= p.log(index)[-1].items()
        assert not p.lock_held(index)
    # hosts 1 and 2 were never switched to the bad release
    assert [len(p.read(i, "switched_at").split()) for i in range(3)] == [2, 1, 1]
    with pytest.raises(DeployFailed, match="no earlier good release"):
        p.rollback()  # the bad release is never a rollback target
    (p.root / "app" / "BROKEN").unlink()
    p.deploy()
    assert [p.current(i) for i in range(3)] == ["releases/3"] * 3


def test_unhealthy_release_without_batches_switches_every_host_back(web_project):
    p = web_project
    p.deploy()
    (p.root / "app" / "BROKEN").write_text("yes\n")
    with pytest.raises(DeployFailed, match="health check failed"):
        p.deploy()
    assert [p.current(i) for i in range(3)] == ["releases/1"] * 3
    assert [serving(p, i) for i in range(3)] == ["ok"] * 3
