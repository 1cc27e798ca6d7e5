"""Invoke tasks: flags in, one call into the package, errors out as one line and an exit code.

``tasks.py`` in a project calls :func:`make_collection` with its own folder, so
``config/`` and ``templates/`` are found next to it wherever the project lives.
"""

from __future__ import annotations

import os
from pathlib import Path

from invoke import Collection, Exit, task

from .errors import ConfigError, DeployerError

EXIT_CODES = "Exit codes: 0 ok, 1 failed (nothing switched, or switched back), 2 config/usage error, 3 lock held, 4 host unreachable."
STAGE_HELP = "Stage: config/<stage>.yml (default: default_stage in config/deploy.yml, or $DEPLOYER_STAGE)."


def _stage(root: Path, stage: str | None) -> str:
    from . import config as cfg

    chosen = stage or os.environ.get("DEPLOYER_STAGE") or cfg.default_stage(root)
    if not chosen:
        stages = ", ".join(cfg.list_stages(root)) or "none"
        raise ConfigError(f"--stage: no stage given and no default_stage in config/deploy.yml (stages: {stages})")
    return chosen


def _run(root: Path, stage: str | None, action):
    """Load config, run the action, and turn every failure into ``Exit``."""
    from . import config as cfg
    from .output import Reporter

    try:
        config = cfg.load(root, _stage(root, stage))
        reporter = Reporter()
        return action(config, reporter)
    except DeployerError as exc:
        raise Exit(f"error: {exc.message}", exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("error: interrupted", 130) from None


def _summary(reporter, summary) -> None:
    reporter.table(
        ["host", "release", "previous", "status", "time"],
        [[r.host, r.release, "-" if r.previous is None else r.previous, r.status, f"{summary.seconds:.2f}s"] for r in summary.rows],
    )
    reporter.line(f"{summary.command} of release {summary.release} to {summary.stage}: done in {summary.seconds:.2f}s")


def make_collection(root: str | Path) -> Collection:
    """The task collection for a project whose ``config/`` and ``templates/`` live in ``root``."""
    root = Path(root).resolve()

    @task(help={"stage": STAGE_HELP, "force-unlock": "First break a stale lock left by a killed deploy (shows its holder)."})
    def deploy(c, stage=None, force_unlock=False):
        """Deploy the artifact to every host of a stage (build, upload, hooks, atomic switch)."""
        from .deploy import deploy as run

        _run(root, stage, lambda cfg, rep: _summary(rep, run(cfg, rep, force_unlock=force_unlock)))

    @task(help={"stage": STAGE_HELP, "to": "Release number to roll back to (default: the previous good one)."})
    def rollback(c, stage=None, to=None):
        """Switch every host back to the previous good release, instantly (no upload)."""
        from .deploy import rollback as run

        target = None
        if to is not None:
            if not str(to).isdigit():
                raise Exit(f"error: --to: expected a release number, got {to!r}", 2)
            target = int(to)
        _run(root, stage, lambda cfg, rep: _summary(rep, run(cfg, rep, target)))

    @task(help={"stage": STAGE_HELP})
    def releases(c, stage=None):
        """List each host's releases: current, status, when and by whom, sha256."""
        from .manage import releases as run

        _run(root, stage, run)

    @task(help={"stage": STAGE_HELP})
    def cleanup(c, stage=None):
        """Remove old releases beyond keep_releases (never current or the rollback target)."""
        from .manage import cleanup as run

        _run(root, stage, run)

    @task(help={"stage": STAGE_HELP})
    def check(c, stage=None):
        """Reach every host and verify permissions, free disk and layout; change nothing."""
        from .manage import check as run

        def action(cfg, rep):
            reports = run(cfg, rep)
            if any(r.problems for r in reports.values()):
                raise Exit("error: check found problems (see above)", 1)

        _run(root, stage, action)

    @task(help={"stage": STAGE_HELP})
    def unlock(c, stage=None):
        """Break a stale deploy lock on every host, showing who held it and since when."""
        from .manage import unlock as run

        _run(root, stage, run)

    for body in (deploy, rollback):
        body.__doc__ = (body.__doc__ or "") + "\n\n" + EXIT_CODES
    return Collection(deploy, rollback, releases, cleanup, check, unlock)
