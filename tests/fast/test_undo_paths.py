"""Every undo path of deploy, rollback and promote, on three fake hosts, without Docker.

Each case sets the scene (release 1 live everywhere), makes one host fail at one point,
and compares what every host was sent, and its state afterwards, with a golden story in
``golden/``. The assertions below each golden say the promise in plain words.
"""

from __future__ import annotations

import pytest
import yaml
from fakehost import FakeHost
from story import matches_golden, tell

from deployer.errors import DeployerError
from deployer.recipes.deploy import deploy
from deployer.recipes.promote import promote
from deployer.recipes.rollback import rollback

PHASES = ("before_deploy", "after_upload", "before_switch", "after_switch", "after_rollback", "on_failure")


def with_hooks(stage):
    """A hook in every phase, so the stories show where each runs."""
    return stage.set(hooks={phase: [{"command": f"echo {phase}"}] for phase in PHASES})


def first_release(stage) -> None:
    """Release 1 live on every host; then record afresh and change the app."""
    deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    stage.fleet.forget()
    stage.change_app("hello again\n")


def attempt(run) -> DeployerError | None:
    try:
        run()
    except DeployerError as exc:
        return exc
    return None


DEPLOY_FAILURES = [
    # (case, host, step that fails there, how, exit code)
    ("before-upload", "web2", "hook 'echo before_deploy'", "exit", 1),
    ("during-upload", "web2", "copy release 2 from release 1", "exit", 1),
    ("upload-connection-lost", "web3", "copy release 2 from release 1", "drop", 4),
    ("before-switch", "web1", "hook 'echo before_switch'", "exit", 1),
    ("switch-of-host-2", "web2", "switch current -> releases/2", "exit", 1),
    ("after-switch", "web3", "hook 'echo after_switch'", "exit", 1),
    ("ctrl-c-after-upload", "web2", "hook 'echo after_upload'", "interrupt", 130),
    ("ctrl-c-in-switch", "web2", "switch current -> releases/2", "interrupt", 130),
]


@pytest.mark.parametrize(
    ("case", "host", "step", "how", "code"), DEPLOY_FAILURES, ids=[c[0] for c in DEPLOY_FAILURES]
)
def test_a_failed_deploy_leaves_every_host_as_it_was(stage, case, host, step, how, code):
    with_hooks(stage)
    first_release(stage)
    stage.fleet[host].fail(step, how)
    error = attempt(lambda: deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener))
    matches_golden(
        f"deploy-{case}",
        tell(f"deploy release 2 over 1; {host} fails at: {step} ({how})", stage.fleet, error),
    )
    assert error is not None and error.exit_code == code, error
    reachable = [h for h in stage.fleet.hosts.values() if not (how == "drop" and h.name == host)]
    for fake in reachable:
        assert fake.current() == "releases/1", fake.name
        assert not fake.locked(), fake.name
    switched = case in ("switch-of-host-2", "after-switch", "ctrl-c-in-switch")
    for fake in reachable:
        # Before the switch the new release is removed; once a host switched it stays,
        # marked failed, so cleanup takes it first.
        assert fake.releases() == ([1, 2] if switched else [1]), fake.name


def test_a_deploy_story_when_nothing_fails(stage):
    with_hooks(stage)
    first_release(stage)
    summary = deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    matches_golden("deploy-ok", tell("deploy release 2 over 1", stage.fleet))
    assert summary.release == 2
    assert all(h.current() == "releases/2" and not h.locked() for h in stage.fleet.hosts.values())


def test_a_canary_that_fails_its_health_check_switches_only_itself_back(stage):
    stage.set(
        rollout={"canary": 1, "batch_size": 2}, healthcheck={"command": "true", "retries": 1, "interval": 0}
    )
    first_release(stage)
    stage.fleet["web1"].fail("health check")
    error = attempt(lambda: deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener))
    matches_golden("deploy-canary-unhealthy", tell("canary web1 fails its health check", stage.fleet, error))
    assert error is not None and error.exit_code == 1
    # web2 and web3 were never switched: the story shows no switch sent to them.
    for name in ("web2", "web3"):
        assert not any("mv -T" in s for s in stage.fleet[name].received), name
    assert all(h.current() == "releases/1" for h in stage.fleet.hosts.values())


ROLLBACK_FAILURES = [
    ("switch-of-host-2", "web2", "switch current -> releases/1", "exit", 1),
    ("ctrl-c-in-switch", "web2", "switch current -> releases/1", "interrupt", 130),
]


def two_releases(stage) -> None:
    first_release(stage)
    deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    stage.fleet.forget()


def test_a_rollback_story_when_nothing_fails(stage):
    with_hooks(stage)
    two_releases(stage)
    summary = rollback(stage.config(), stage.reporter(), opener=stage.fleet.opener)
    matches_golden("rollback-ok", tell("rollback from 2 to 1", stage.fleet))
    assert summary.release == 1
    assert all(h.current() == "releases/1" for h in stage.fleet.hosts.values())


@pytest.mark.parametrize(
    ("case", "host", "step", "how", "code"), ROLLBACK_FAILURES, ids=[c[0] for c in ROLLBACK_FAILURES]
)
def test_a_failed_rollback_puts_every_host_back(stage, case, host, step, how, code):
    two_releases(stage)
    stage.fleet[host].fail(step, how)
    error = attempt(lambda: rollback(stage.config(), stage.reporter(), opener=stage.fleet.opener))
    matches_golden(
        f"rollback-{case}", tell(f"rollback 2 -> 1; {host} fails at: {step} ({how})", stage.fleet, error)
    )
    assert error is not None and error.exit_code == code
    for fake in stage.fleet.hosts.values():
        assert fake.current() == "releases/2" and fake.releases() == [1, 2] and not fake.locked(), fake.name


def promotable(stage):
    """A staging stage on host stage1 with release 1 live; the test stage is the target."""
    stage.fleet.hosts["stage1"] = FakeHost("stage1", stage.fleet["web1"].root.parent / "stage1", "/srv/demo")
    staging = {**stage.settings, "hosts": [{"host": "stage1"}]}
    (stage.root / "config" / "staging.yml").write_text(yaml.safe_dump(staging))
    deploy(stage.config("staging"), stage.reporter(), opener=stage.fleet.opener)
    stage.fleet.forget()
    return stage.config("staging")


def test_a_promote_story_when_nothing_fails(stage):
    staging = promotable(stage)
    promote(staging, stage.config(), stage.reporter(), opener=stage.fleet.opener)
    matches_golden("promote-ok", tell("promote staging release 1 to test", stage.fleet))
    for name in ("web1", "web2", "web3"):
        assert stage.fleet[name].current() == "releases/1"


def test_a_promote_whose_source_drops_touches_no_target(stage):
    staging = promotable(stage)
    stage.fleet["stage1"].fail("pack release 1", "drop")
    error = attempt(lambda: promote(staging, stage.config(), stage.reporter(), opener=stage.fleet.opener))
    matches_golden(
        "promote-source-lost", tell("promote; the source host drops while packing", stage.fleet, error)
    )
    assert error is not None and error.exit_code == 4
    for name in ("web1", "web2", "web3"):
        assert stage.fleet[name].received == [] and stage.fleet[name].current() is None


def test_a_promote_that_fails_at_a_switch_is_switched_back(stage):
    staging = promotable(stage)
    first = stage.config()
    deploy(first, stage.reporter(), opener=stage.fleet.opener)  # release 1 of its own on the targets
    stage.fleet.forget()
    stage.fleet["web3"].fail("switch current -> releases/2")
    error = attempt(lambda: promote(staging, stage.config(), stage.reporter(), opener=stage.fleet.opener))
    matches_golden("promote-switch-fails", tell("promote; web3 fails its switch", stage.fleet, error))
    assert error is not None and error.exit_code == 1
    for name in ("web1", "web2", "web3"):
        assert stage.fleet[name].current() == "releases/1", name


def _gone(pid: int) -> bool:
    """No such process, or only a zombie waiting for its parent."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_a_local_hook_past_its_timeout_is_stopped_and_the_deploy_undone(stage, tmp_path):
    """Issue 10: ``TimeoutExpired`` used to escape the undo, leaving ``current`` switched
    and release 2 logged ``staged``. Now the hook's whole process group is stopped, every
    host is switched back, and the error is one line naming the hook."""
    first_release(stage)
    child = tmp_path / "child.pid"
    command = f"sleep 60 & echo $! > {child}; wait"
    stage.set(ssh={"command_timeout": 1}, hooks={"after_switch": [{"command": command, "local": True}]})
    error = attempt(lambda: deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener))
    assert error is not None and error.exit_code == 1, error
    assert "local after_switch hook" in error.message and "ssh.command_timeout" in error.message
    assert "\n" not in error.message
    assert _gone(int(child.read_text())), "the hook's background child outlived the timeout"
    for fake in stage.fleet.hosts.values():
        assert fake.current() == "releases/1", fake.name
        assert not fake.locked(), fake.name
        assert [e.get("status") for e in fake.log() if e.get("release") == 2][-1] == "failed", fake.name


def test_an_unexpected_exception_is_still_undone(stage, monkeypatch):
    """Undo runs on every exception, not only the expected kinds: a bug right after the
    switch (here the switch itself works, then a plain RuntimeError) still switches every
    host back, and the error is one line."""
    from deployer.recipes import deploy as deploy_module

    first_release(stage)
    real = deploy_module.switch_all

    def then_boom(*args, **kwargs):
        real(*args, **kwargs)
        raise RuntimeError("boom")

    monkeypatch.setattr(deploy_module, "switch_all", then_boom)
    error = attempt(lambda: deploy(stage.config(), stage.reporter(), opener=stage.fleet.opener))
    assert error is not None and error.exit_code == 1 and "unexpected RuntimeError: boom" in error.message
    assert "every host was switched back" in error.message
    for fake in stage.fleet.hosts.values():
        assert fake.current() == "releases/1" and not fake.locked(), fake.name
