"""The local process gets SIGINT, and separately SIGKILL, at each phase of a deploy.

The deploy runs as the real CLI (``python -m invoke deploy``) in a subprocess. Each phase is
made slow and observable on the servers, and the signal is sent once the servers show the
deploy is in that phase:

- upload: a 200 MB artifact; signalled once ``releases/2`` exists (without metadata) on a host;
- before_switch: a hook ``touch in-hook; sleep 30``; signalled once every host runs it;
- switch: there is no hook inside the switch, so host 3 gets a ``mv`` wrapper in
  /usr/local/bin (first on the SSH PATH) that, only for this test's deploy_to, records
  "start" and holds the first such rename at a barrier (``.mv-go``) until the test has
  sent the signal and the CLI has ended, then runs the real ``mv -T`` and records "end".
  So the signal certainly lands while host 3's rename is in flight (hosts 1 and 2 have
  normally switched already), and the CLI must not wait for that rename to come back.
  Later renames (the undo's) pass straight through;
- after_switch: a hook ``touch in-after; sleep 30``; signalled once every host runs it.

After SIGINT: exit 130, ``current`` on every host is as before (or consistently the new
release), never dangling, no lock left. After SIGKILL: the lock stays, the next deploy is
refused with exit 3 naming holder, pid and age, ``invoke unlock`` clears it, and a deploy
then brings every host to one release.
"""

from __future__ import annotations

import re
import signal

import pytest

from .support import CliRun, assert_one_line_error, host_state, states, trace, wait_for

pytestmark = pytest.mark.ssh

SLOW_MV = """#!/bin/sh
# Installed by tests/faults/test_interrupts.py: slows down renames under one deploy_to only.
case "$*" in
  *"{d}/"*)
    if mkdir "{d}/.mv-held" 2>/dev/null; then
      echo start >> "{d}/.mv-trace"
      i=0
      while [ ! -e "{d}/.mv-go" ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
      /usr/bin/mv "$@"; rc=$?
      echo end >> "{d}/.mv-trace"
      exit $rc
    fi;;
esac
exec /usr/bin/mv "$@"
"""


def hook(marker: str) -> list[dict]:
    return [{"command": f'touch "$DEPLOYER_DEPLOY_TO/{marker}"; sleep 30'}]


def marker_everywhere(project, marker: str):
    return lambda: all(marker in (s.entries or []) for s in states(project))


def arm(project, phase: str, big_artifact):
    """Make ``phase`` slow and observable; returns the predicate that says we are in it."""
    d = project.deploy_to
    if phase == "upload":
        project.set(artifact={"path": str(big_artifact)})
        return lambda: host_state(project.hosts[0], d).releases.get("2") == "partial"
    if phase == "before_switch":
        project.set(hooks={"before_switch": hook("in-hook")})
        return marker_everywhere(project, "in-hook")
    if phase == "switch":
        project.hosts[2].sh(
            f"cat > /usr/local/bin/mv <<'EOF'\n{SLOW_MV.format(d=d)}EOF\nchmod 755 /usr/local/bin/mv",
            user="root",
        )
        return lambda: "start" in project.sh(2, f"cat {d}/.mv-trace 2>/dev/null || true")
    if phase == "after_switch":
        project.set(hooks={"after_switch": hook("in-after")})
        return marker_everywhere(project, "in-after")
    raise ValueError(phase)


def settle(project, phase: str) -> None:
    """Wait until nothing the deploy started is still changing the servers: the slow ``mv``
    keeps running on host 3 after the local process is gone, and an upload's ``tar`` may
    still be cleaning up after its input ended."""
    if phase == "upload":

        def quiet() -> bool:
            return all(not h.sh("pgrep -u deploy -x tar || true").strip() for h in project.hosts)

        wait_for(quiet, timeout=60, interval=0.2, what="tar to end on every host")
    if phase == "switch":
        project.sh(2, f"touch {project.deploy_to}/.mv-go")

        def done() -> bool:
            lines = project.sh(2, f"cat {project.deploy_to}/.mv-trace 2>/dev/null || true").split()
            return lines.count("start") == lines.count("end")

        wait_for(done, timeout=60, interval=0.2, what="the in-flight rename on host 3 to end")


def disarm(project, phase: str) -> None:
    if phase == "switch":
        project.hosts[2].sh(
            f"grep -q {project.deploy_to} /usr/local/bin/mv 2>/dev/null && rm -f /usr/local/bin/mv || true",
            user="root",
        )
    project.set(hooks={"before_switch": [], "after_switch": []}, artifact={"path": "app"})


def interrupt(project, phase: str, big_artifact, sig: int, env: dict | None = None):
    """Deploy release 1, then start deploying release 2 and send ``sig`` during ``phase``."""
    project.set(ssh={"command_timeout": 60})
    project.deploy()
    trigger = arm(project, phase, big_artifact)
    run = CliRun(project, "deploy", "--stage=test", env=env)
    try:
        wait_for(lambda: trigger() or not run.running(), timeout=90, what=f"the deploy to reach {phase}")
        assert run.running(), f"the deploy ended before reaching {phase}: {run.finish().stderr}"
        run.send(sig)
        result = run.finish(timeout=60)  # Ctrl-C must not hang, whatever the phase
        settle(project, phase)
    finally:
        run.kill()
        disarm(project, phase)
    return run, result


PHASES = ["upload", "before_switch", "switch", "after_switch"]


@pytest.mark.parametrize("phase", PHASES)
def test_sigint_leaves_current_as_before_and_no_lock(project, big_artifact, phase):
    _, result = interrupt(project, phase, big_artifact, signal.SIGINT)
    assert_one_line_error(result, 130, "interrupted")
    st = states(project)
    currents = {s.current for s in st}
    assert len(currents) == 1 and currents <= {"releases/1", "releases/2"}, [(s.name, s.current) for s in st]
    assert all(s.current_ok for s in st), [(s.name, s.current, s.releases) for s in st]  # never dangling
    assert not any(s.locked for s in st), [(s.name, s.lock) for s in st]
    assert not any(s.partial for s in st), [(s.name, s.releases) for s in st]
    if currents == {"releases/1"}:
        # release 2 is gone, or kept and recorded as failed (so rollback never picks it)
        for s in st:
            assert 2 not in s.numbers or s.statuses(2)[-1:] == ["failed"], (s.name, s.releases, s.statuses(2))
    # No unlock needed: the next deploy just works.
    project.deploy()
    finals = {s.current for s in states(project)}
    assert len(finals) == 1 and finals != {"releases/1"}, finals


@pytest.mark.parametrize("phase", PHASES)
def test_sigkill_keeps_lock_next_deploy_names_holder_and_unlock_clears_it(project, big_artifact, phase):
    holder = f"sigkill-{phase}@faults"
    run, result = interrupt(project, phase, big_artifact, signal.SIGKILL, env={"DEPLOYER_USER": holder})
    assert result.code == -signal.SIGKILL
    st = states(project)
    assert all(s.locked and holder in s.lock and str(run.pid) in s.lock for s in st), [
        (s.name, s.lock) for s in st
    ]
    assert all(s.current_ok for s in st), [(s.name, s.current, s.releases) for s in st]  # never dangling
    before = [(s.current, s.releases, s.lock) for s in st]

    blocked = project.invoke("deploy", "--stage=test")
    line = assert_one_line_error(blocked, 3, holder, f"pid {run.pid}", "invoke unlock")
    assert re.search(r"for \d+m\d\ds", line), line  # the lock's age
    assert [
        (s.current, s.releases, s.lock) for s in states(project)
    ] == before  # the refused deploy changed nothing

    unlocked = project.invoke("unlock", "--stage=test")
    assert unlocked.returncode == 0, unlocked.stderr
    assert holder in unlocked.stdout
    assert not any(s.locked for s in states(project))

    project.deploy()
    final = states(project)
    assert len({s.current for s in final}) == 1 and all(s.current_ok for s in final), [
        (s.name, s.current) for s in final
    ]
    assert not any(s.locked for s in final)
    trace(f"{phase}: after SIGKILL and unlock every host runs {final[0].current}")


def test_force_unlock_exists_and_is_not_the_default(project):
    import json
    import time

    info = json.dumps(
        {"holder": "ghost@gone", "pid": 999999, "since": int(time.time()) - 3600, "command": "deploy"}
    )
    project.sh(
        1,
        f"mkdir -p {project.deploy_to}/.deployer/lock && echo '{info}' > {project.deploy_to}/.deployer/lock/info",
    )
    helped = project.invoke("--help", "deploy")
    assert "--force-unlock" in helped.stdout, helped.stdout
    plain = project.invoke("deploy", "--stage=test")
    assert_one_line_error(plain, 3, "ghost@gone", "pid 999999", "for 60m")
    assert project.release_dirs(0) == [] and project.lock_held(1)
    forced = project.invoke("deploy", "--stage=test", "--force-unlock")
    assert forced.returncode == 0, forced.stderr
    assert "ghost@gone" in forced.stdout  # says whose lock it broke
    st = states(project)
    assert {s.current for s in st} == {"releases/1"} and not any(s.locked for s in st)
