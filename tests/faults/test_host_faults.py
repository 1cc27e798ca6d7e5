"""Hosts that die, freeze or drop off mid-deploy (issue 3, "Faults to survive").

Each test injects the fault into real SSH containers (docker kill / pause / a hook that
kills its own sshd session) and then reads the state on the servers: where ``current``
points, which release directories exist, whether a lock is held, what the release log says.
Timing is only ever asserted as a generous upper bound that proves "does not hang".
"""

from __future__ import annotations

import re

import pytest

from .support import (
    CliRun,
    Gaps,
    assert_one_line_error,
    host_state,
    kill,
    pause,
    remove_containers,
    start_again,
    states,
    trace,
    unpause,
    use_hosts,
    wait_for,
)

pytestmark = pytest.mark.ssh

# Generous bounds: a frozen host must turn into a failure, never a hang.
HANG_BOUND = 60
CONNECT_TIMEOUT = COMMAND_TIMEOUT = 5  # seconds: a healthy host on a busy machine stays well within them
# Starting Python and importing the tool, on a busy 2-core machine: what a run may take on
# top of the configured timeout it is waiting out.
START_MARGIN = 12


def runs_release(message: str, name: str, number: int) -> bool:
    """Does ``message`` say that host ``name`` runs release ``number``?"""
    return re.search(rf"{re.escape(name)}[^,;()]*?\breleases?\W{{0,3}}{number}\b", message) is not None


def recover_with_next_deploy(project, gaps: Gaps, why: str):
    """Issue 3: once the host is back, the next deploy succeeds everywhere. If it is refused
    because the lock the lost host still holds, that is recorded as a gap and the documented
    workaround (``invoke unlock``) is used so the rest of the test still runs."""
    result = project.invoke("deploy", "--stage=test")
    if result.returncode == 3 and "lock" in result.stderr:
        gaps.expect(False, f"{why}: next deploy refused with exit 3: {result.stderr.strip()}")
        unlocked = project.invoke("unlock", "--stage=test")
        assert unlocked.returncode == 0, unlocked.stderr
        result = project.invoke("deploy", "--stage=test")
    assert result.returncode == 0, f"the next deploy failed: {result.stderr}"
    return result


def assert_converged(project) -> int:
    """Every host on the same, existing release, no lock, no half-built release left."""
    st = states(project)
    releases = {s.release for s in st}
    assert len(releases) == 1 and None not in releases, [(s.name, s.current) for s in st]
    assert all(s.current_ok for s in st), [(s.name, s.current) for s in st]
    assert not any(s.locked for s in st), [(s.name, s.lock) for s in st]
    assert not any(s.partial for s in st), [(s.name, s.releases) for s in st]
    return releases.pop()


# -- one of three hosts killed during the upload ---------------------------------------------


def test_host_killed_during_upload_fails_naming_it_and_next_deploy_succeeds(
    fresh_hosts, fresh_project, big_artifact
):
    hosts = fresh_hosts(3)
    project = fresh_project(hosts)
    project.set(ssh={"connect_timeout": 5, "command_timeout": 10})
    project.deploy()  # release 1 everywhere
    victim, survivors = hosts[2], hosts[:2]
    victim_name = victim.name
    project.set(artifact={"path": str(big_artifact)})
    run = CliRun(project, "deploy", "--stage=test")
    try:
        wait_for(
            lambda: "2" in host_state(victim, project.deploy_to).releases or not run.running(),
            timeout=60,
            what="the upload of release 2 to start on the victim",
        )
        assert run.running(), f"the deploy ended before the host could be killed: {run.finish().stderr}"
        kill(victim)
        trace("killed")
        result = run.finish(timeout=120)
    finally:
        run.kill()
    assert_one_line_error(result, (1, 4), f"host {victim_name}")

    survivor_states = [host_state(h, project.deploy_to) for h in survivors]
    for state in survivor_states:
        assert state.current == "releases/1", (state.name, state.current)  # nothing switched
        assert state.numbers == [1] and not state.partial, (
            state.name,
            state.releases,
        )  # no half-built release
        assert not state.locked, (state.name, state.lock)  # locks given back
        assert state.statuses(2)[-1:] in ([], ["failed"]), state.statuses(2)

    start_again(victim)
    trace("started again")
    use_hosts(project)
    back = host_state(victim, project.deploy_to)
    assert back.current == "releases/1", back.current  # the victim never switched either

    gaps = Gaps()
    project.set(artifact={"path": "app"})
    recover_with_next_deploy(project, gaps, "after docker start of the killed host")
    number = assert_converged(project)
    assert number >= 3  # release 2 is never reused
    for state in states(project):
        assert state.numbers == [1, number], (state.name, state.releases)  # the victim's half-built 2 is gone
    gaps.check()


# -- a frozen host (docker pause) -----------------------------------------------------------


@pytest.fixture(scope="module")
def pausable_hosts(ssh_image, ssh_key):
    """Two containers shared by this module's pause tests (each test uses its own deploy_to
    and unpauses in teardown)."""
    from sshd.hosts import start_hosts

    hosts = start_hosts(ssh_image, (ssh_key.parent / "id_ed25519.pub").read_text().strip(), 2)
    yield hosts
    remove_containers(hosts)


@pytest.fixture
def frozen_project(pausable_hosts, fresh_project):
    project = fresh_project(pausable_hosts)
    project.set(ssh={"connect_timeout": CONNECT_TIMEOUT, "command_timeout": COMMAND_TIMEOUT})
    yield project
    for host in pausable_hosts:
        unpause(host)


def test_paused_host_before_connect_fails_within_connect_timeout(frozen_project, pausable_hosts):
    project, frozen = frozen_project, pausable_hosts[1]
    pause(frozen)
    run = CliRun(project, "deploy", "--stage=test")
    try:
        result = run.finish(timeout=HANG_BOUND)  # fails the test if it hangs
    finally:
        unpause(frozen)
    assert result.code == 4, result.stderr
    # It gives up after ssh.connect_timeout, not after some longer default.
    assert result.seconds < CONNECT_TIMEOUT + START_MARGIN, result.seconds
    assert "Traceback" not in result.stderr, result.stderr
    last = result.error_lines[-1]
    assert last.startswith(f"error: host {frozen.name}:"), last
    for host in pausable_hosts:
        state = host_state(host, project.deploy_to)
        assert not state.exists, (host.name, state.entries)  # nothing created anywhere, no lock
    gaps = Gaps()
    gaps.expect(len(result.error_lines) == 1, f"stderr is not one line: {result.stderr!r}")
    gaps.expect(
        "connect_timeout" in last,
        f"the error does not say the host gave no answer within ssh.connect_timeout: {last!r}",
    )
    gaps.check()


@pytest.mark.parametrize("phase", ["hook", "upload"])
def test_paused_host_fails_within_command_timeout(frozen_project, pausable_hosts, big_artifact, phase):
    """A host frozen during a silent hook, or mid-upload, fails the deploy within bounded
    time; the healthy host is left as it was."""
    project, (healthy, frozen) = frozen_project, pausable_hosts
    project.deploy()
    if phase == "hook":
        # Both hosts wait in the hook (ticking, so never silent) until the test lets the
        # healthy one go, after the other is frozen.
        slow = {"hooks": {"before_switch": [{"command": project.barrier_hook("in-hook")}]}}
        back = {"hooks": {"before_switch": []}}
        started = lambda: project.reached("in-hook", [1])
        what = "the before_switch hook to start"
    else:
        slow, back = {"artifact": {"path": str(big_artifact)}}, {"artifact": {"path": "app"}}
        started = lambda: "2" in host_state(frozen, project.deploy_to).releases
        what = "the upload of release 2 to start"
    project.set(**slow)
    run = CliRun(project, "deploy", "--stage=test")
    try:
        wait_for(lambda: started() or not run.running(), timeout=120, what=what)
        assert run.running(), run.finish().stderr
        pause(frozen)
        if phase == "hook":
            project.release_barrier("in-hook", [0])
        result = run.finish(timeout=HANG_BOUND)
    finally:
        run.kill()
        unpause(frozen)
        if phase == "hook":
            project.release_barrier("in-hook")
    assert_one_line_error(result, (1, 4), f"host {frozen.name}", "command_timeout")
    state = host_state(healthy, project.deploy_to)
    assert state.current == "releases/1" and state.numbers == [1] and not state.locked, state
    assert host_state(frozen, project.deploy_to).current == "releases/1"
    # The frozen host could not be told to give its lock back; `invoke unlock` always works.
    assert project.invoke("unlock", "--stage=test").returncode == 0
    project.set(**back)
    assert project.invoke("deploy", "--stage=test").returncode == 0
    assert assert_converged(project) == 3


# -- a host becomes unreachable after the others switched -------------------------------------


def check_divergence_handling(project, result, lost, others, gaps: Gaps) -> None:
    """Shared expectations once ``lost`` dropped off after the switch and the deploy failed."""
    error = assert_one_line_error(result, (1, 4), lost.name)
    for host in others:
        state = host_state(host, project.deploy_to)
        assert state.current == "releases/1", (host.name, state.current)  # switched back
        assert not state.locked, (host.name, state.lock)
    lost_state = host_state(lost, project.deploy_to)
    assert lost_state.current in ("releases/1", "releases/2"), lost_state.current
    if lost_state.current == "releases/2":  # it could not be switched back: say who runs what
        for host, number in [(h, 1) for h in others] + [(lost, 2)]:
            gaps.expect(
                runs_release(error, host.name, number),
                f"the error does not say that {host.name} runs release {number}: {error!r}",
            )
        listing = project.invoke("releases", "--stage=test")
        assert listing.returncode == 0, listing.stderr
        assert "DIVERGE" in listing.stdout, listing.stdout
        assert f"{lost.name}: 2" in listing.stdout, listing.stdout
    recover_with_next_deploy(project, gaps, f"after {lost.name} was lost mid-deploy")
    assert assert_converged(project) == 3


def test_host_whose_sshd_dies_after_switch_is_reported_and_next_deploy_converges(project):
    """Simulation: an after_switch hook limited by ``roles`` to one host kills that host's
    own sshd session process (``kill -9 $PPID``): the connection drops after every host
    switched, the hook fails, the tool must switch the others back."""
    a, b, lost = project.hosts
    use_hosts(project, roles=[["web", "db"], ["web"], ["web", "flaky"]])
    project.deploy()
    project.set(hooks={"after_switch": [{"command": "kill -9 $PPID", "roles": ["flaky"]}]})
    result = project.invoke("deploy", "--stage=test")
    project.set(hooks={"after_switch": []})
    gaps = Gaps()
    check_divergence_handling(project, result, lost, [a, b], gaps)
    gaps.check()


def test_host_paused_during_another_hosts_after_switch_hook(frozen_project, pausable_hosts):
    """Simulation: host 0 (role db) runs a slow after_switch hook that then fails; while it
    runs, host 1 (already switched) is frozen with docker pause, so switching it back times
    out (ssh.command_timeout)."""
    project, (runner, lost) = frozen_project, pausable_hosts
    project.deploy()
    # The hook waits at a barrier (ticking) that the test opens once the other host is frozen.
    hook = {"command": project.barrier_hook("in-after") + "; exit 1", "roles": ["db"]}
    project.set(hooks={"after_switch": [hook]})
    run = CliRun(project, "deploy", "--stage=test")
    try:
        wait_for(
            lambda: project.reached("in-after", [0]) or not run.running(),
            timeout=120,
            what="the after_switch hook to start",
        )
        assert run.running(), run.finish().stderr
        pause(lost)
        project.release_barrier("in-after", [0])
        result = run.finish(timeout=HANG_BOUND)
    finally:
        run.kill()
        unpause(lost)
        project.release_barrier("in-after", [0])
    project.set(hooks={"after_switch": []})
    gaps = Gaps()
    check_divergence_handling(project, result, lost, [runner], gaps)
    gaps.check()
