"""Hooks: user commands at fixed points of a deploy, rollback or promote.

Remote hooks run on their hosts in parallel (filtered by ``roles``, or on one host with
``once``); ``local: true`` hooks run once on the deploying machine, in the project root.
Every hook sees ``DEPLOYER_*`` variables so one script can serve several commands.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Sequence

from .. import commands, plan
from ..config import Config, Hook
from ..errors import HookFailed
from ..failures import raise_on_failure
from ..fleet import Fleet
from ..layout import Layout
from ..runner import Outcome
from ..transport import Result, Session


def hook_env(config: Config, command: str, release: int | None, previous: int | None) -> dict[str, str]:
    """What every hook finds in its environment."""
    layout = Layout(config.deploy_to)
    return {
        "DEPLOYER_COMMAND": command,
        "DEPLOYER_STAGE": config.stage,
        "DEPLOYER_APPLICATION": config.application,
        "DEPLOYER_RELEASE": "" if release is None else str(release),
        "DEPLOYER_RELEASE_PATH": "" if release is None else layout.release(release),
        "DEPLOYER_PREVIOUS_RELEASE": "" if previous is None else str(previous),
        "DEPLOYER_DEPLOY_TO": config.deploy_to,
        "DEPLOYER_INSTANCE": config.instance or "",
    }


def run_local(config: Config, phase: str, hook: Hook, env: dict[str, str], reporter) -> None:
    """Run a ``local: true`` hook on this machine; a failure, or running past
    ``ssh.command_timeout``, raises HookFailed with its output. The hook runs in a process
    group of its own, so a timeout or Ctrl-C stops whatever it started too."""
    proc = subprocess.Popen(
        ["/bin/sh", "-c", hook.command],
        cwd=config.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=config.ssh.command_timeout)
    except BaseException as exc:
        _stop_group(proc)
        if isinstance(exc, subprocess.TimeoutExpired):
            raise HookFailed(
                f"local {phase} hook `{hook.command}` still running after "
                f"{config.ssh.command_timeout:g}s (ssh.command_timeout): stopped"
            ) from None
        raise
    if proc.returncode != 0:
        tail = " | ".join((err.strip() or out.strip()).splitlines()[-5:]) or "no output"
        raise HookFailed(f"local {phase} hook `{hook.command}` exited {proc.returncode}: {tail}")
    reporter.step("(local)", phase, f"ok: {hook.command}")


def _stop_group(proc: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()


def run_hooks(
    fleet: Fleet,
    phase: str,
    command: str,
    release: int | None,
    previous: dict[str, int | None],
    names: Sequence[str] | None = None,
    directory: str | None = None,
) -> None:
    """Run a phase's hooks in order. Remote ones run in ``directory`` (default: the
    release) on their hosts in parallel; the first failure raises HookFailed naming the
    hook, the host and its output."""
    allowed = set(fleet.names if names is None else names)
    where = directory or (fleet.layout.release(release) if release is not None else fleet.layout.deploy_to)
    for hook in fleet.config.hooks.get(phase, ()):
        if not hook.local:
            _run_remote(fleet, phase, hook, command, release, previous, allowed, where)
        elif fleet.dry_run:
            for plan_of_host in fleet.plans.values():
                plan_of_host.append(f"# on this machine ({phase}, local hook)\n{hook.command}")
        else:
            newest = max((p for p in previous.values() if p is not None), default=None)
            env = hook_env(fleet.config, command, release, newest)
            run_local(fleet.config, phase, hook, env, fleet.reporter)


def _run_remote(
    fleet: Fleet,
    phase: str,
    hook: Hook,
    command: str,
    release: int | None,
    previous: dict[str, int | None],
    allowed: set[str],
    where: str,
) -> None:
    """One remote hook on the hosts it is for (roles, once) among ``allowed``."""
    hosts = [fleet.host(n) for n in fleet.names]
    targets = [h.name for h in plan.hook_hosts(hook, hosts) if h.name in allowed]
    if not targets:
        return

    def step(session: Session):
        env = hook_env(fleet.config, command, release, previous.get(session.host.name))
        return session.run(commands.run_hook(where, hook.command, env, hook.sudo, hook.sudo_user))

    outcomes = fleet.each(step, targets)
    for outcome in outcomes:
        if outcome.ok and outcome.value.ok:
            fleet.reporter.step(outcome.name, phase, f"ok: {hook.command}", outcome.seconds)

    def explain(o: Outcome[Result]) -> str:
        result = o.value
        return (
            f"host {o.name}: {phase} hook `{hook.command}` exited {result.exit_code}: {result.output_tail()}"
        )

    raise_on_failure(outcomes, HookFailed, explain)
