"""Invoke tasks: flags in, one call into the package, errors out as one line and an exit code.

``tasks.py`` in a project calls :func:`make_collection` with its own folder, so
``config/`` and ``templates/`` are found next to it wherever the project lives.
Heavy modules (Fabric, Paramiko, Jinja2) are imported only by the task that needs them.
"""

from __future__ import annotations

import dataclasses
import json as jsonlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

from invoke import Collection, Exit, task

from .errors import ConfigError, DeployerError

EXIT_CODES = (
    "Exit codes: 0 ok; 1 failed (nothing switched, or switched back); 2 config, usage or "
    "artifact error; 3 lock held; 4 host unreachable; 130 interrupted."
)
HELP = {
    "stage": "Stage: config/<stage>.yml (default: $DEPLOYER_STAGE, else default_stage in config/deploy.yml).",
    "hosts": "Only these hosts (comma-separated names as in the config, e.g. web1 or 10.0.0.5:2222).",
    "roles": "Only hosts with one of these roles (comma-separated).",
    "json": "Print one JSON document (documented shape) instead of text.",
    "verbose": "Print every remote command as it runs (secrets masked).",
    "quiet": "Print only errors and the final line.",
    "dry-run": "Connect and read the hosts, then print every command that would run; change nothing.",
    "instance": "For a template stage (one using {instance}, e.g. review apps): which instance.",
}


@dataclasses.dataclass
class Options:
    stage: str | None = None
    hosts: str | None = None
    roles: str | None = None
    json: bool = False
    verbose: bool = False
    quiet: bool = False
    instance: str | None = None


def _stage(root: Path, stage: str | None) -> str:
    from . import config as cfg

    chosen = stage or os.environ.get("DEPLOYER_STAGE") or cfg.default_stage(root)
    if not chosen:
        stages = ", ".join(cfg.list_stages(root)) or "none"
        raise ConfigError(
            f"--stage: no stage given and no default_stage in config/deploy.yml (stages: {stages})"
        )
    return chosen


def _split(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def select_hosts(config, hosts: str | None, roles: str | None):
    """Narrow a stage to ``--hosts`` / ``--roles`` (as Capistrano's HOSTS= and ROLES=)."""
    wanted, wanted_roles = _split(hosts), set(_split(roles))
    if not wanted and not wanted_roles:
        return config
    known = {h.name for h in config.hosts} | {h.host for h in config.hosts}
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise ConfigError(
            f"--hosts: {unknown[0]} is not a host of stage {config.stage} (hosts: {', '.join(h.name for h in config.hosts)})"
        )
    chosen = tuple(
        h
        for h in config.hosts
        if (not wanted or h.name in wanted or h.host in wanted)
        and (not wanted_roles or wanted_roles & set(h.roles))
    )
    if not chosen:
        raise ConfigError(
            f"--roles: no host of stage {config.stage} has role(s) {', '.join(sorted(wanted_roles))}"
        )
    return dataclasses.replace(config, hosts=chosen, all_hosts=config.hosts)


def _run(root: Path, opts: Options, action: Callable):
    """Load config, run the action, and turn every failure into ``Exit`` with one line."""
    from . import config as cfg
    from .output import Reporter

    reporter = Reporter(quiet=opts.quiet, verbose=opts.verbose, json_mode=opts.json)
    try:
        config = select_hosts(cfg.load(root, _stage(root, opts.stage), opts.instance), opts.hosts, opts.roles)
        return action(config, reporter)
    except DeployerError as exc:
        message = reporter.secrets.mask(exc.message)
        if opts.json:
            print(jsonlib.dumps({"ok": False, "error": message, "exit_code": exc.exit_code}), flush=True)
        raise Exit(f"error: {message}", exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("error: interrupted", 130) from None
    finally:
        reporter.end_progress()


def _summary(reporter, summary) -> None:
    reporter.table(
        ["host", "release", "previous", "status", "time"],
        [
            [r.host, r.release, "-" if r.previous is None else r.previous, r.status, f"{r.seconds:.2f}s"]
            for r in summary.rows
        ],
        final=True,
    )
    what = "dry run of " if summary.dry_run else ""
    if summary.command == "rollback":
        done = f"{what}rollback of {summary.stage} to release {summary.release}"
    else:
        done = f"{what}{summary.command} of release {summary.release} to {summary.stage}"
    reporter.final(f"{done}: done in {summary.seconds:.2f}s")
    reporter.document(summary.to_dict())


def _int_option(name: str, value) -> int | None:
    if value is None:
        return None
    if not str(value).isdigit():
        raise Exit(f"error: --{name}: expected a release number, got {value!r}", 2)
    return int(value)


def make_collection(root: str | Path) -> Collection:
    """The task collection for a project whose ``config/`` and ``templates/`` live in ``root``."""
    root = Path(root).resolve()

    @task(
        help={
            **HELP,
            "force-unlock": "First break a stale lock left by a killed deploy (shows its holder).",
            "ref": "Build from this git branch, tag or commit (git archive; the working tree is not used).",
        }
    )
    def deploy(
        c,
        stage=None,
        instance=None,
        hosts=None,
        roles=None,
        ref=None,
        dry_run=False,
        force_unlock=False,
        json=False,
        verbose=False,
        quiet=False,
    ):
        """Deploy the artifact to every host of a stage (build, upload, hooks, atomic switch)."""
        from .deploy import deploy as run

        opts = Options(stage, hosts, roles, json, verbose, quiet, instance=instance)
        _run(
            root,
            opts,
            lambda cfg, rep: _summary(
                rep, run(cfg, rep, force_unlock=force_unlock, dry_run=dry_run, ref=ref)
            ),
        )

    @task(help={**HELP, "to": "Release number to roll back to (default: the previous good one)."})
    def rollback(
        c,
        stage=None,
        instance=None,
        to=None,
        hosts=None,
        roles=None,
        dry_run=False,
        json=False,
        verbose=False,
        quiet=False,
    ):
        """Switch every host back to the previous good release, instantly (no upload)."""
        from .deploy import rollback as run

        target = _int_option("to", to)
        opts = Options(stage, hosts, roles, json, verbose, quiet, instance=instance)
        _run(root, opts, lambda cfg, rep: _summary(rep, run(cfg, rep, target, dry_run=dry_run)))

    @task(
        help={
            "from": "The stage whose current release is promoted.",
            "to": "The stage it is deployed to.",
            "release": "Promote this release of the source stage instead of its current one.",
            **{k: HELP[k] for k in ("dry-run", "json", "verbose", "quiet")},
        }
    )
    def promote(c, from_=None, to=None, release=None, dry_run=False, json=False, verbose=False, quiet=False):
        """Deploy to --to exactly the artifact live on --from (same sha256), no rebuild."""
        from . import config as cfg
        from .promote import promote as run

        if not from_ or not to:
            raise Exit("error: promote: give both --from=<stage> and --to=<stage>", 2)
        number = _int_option("release", release)
        opts = Options(to, None, None, json, verbose, quiet)

        def action(target, rep):
            source = cfg.load(root, from_)
            _summary(rep, run(source, target, rep, number, dry_run=dry_run))

        _run(root, opts, action)

    @task(help={k: HELP[k] for k in ("stage", "instance", "hosts", "roles", "json")})
    def releases(c, stage=None, instance=None, hosts=None, roles=None, json=False):
        """List each host's releases: current, status, when and by whom, sha256."""
        from .manage import releases as run

        _run(root, Options(stage, hosts, roles, json, instance=instance), run)

    @task(
        help={
            **{k: HELP[k] for k in ("stage", "instance", "hosts", "roles", "json")},
            "limit": "Show the last N events (default 50, 0 for all).",
        }
    )
    def history(c, stage=None, instance=None, hosts=None, roles=None, json=False, limit=None):
        """List every event of a stage: deploys, rollbacks, cleanups, failures."""
        from .manage import history as run

        count = 50 if limit is None else _int_option("limit", limit)
        _run(
            root, Options(stage, hosts, roles, json, instance=instance), lambda cfg, rep: run(cfg, rep, count)
        )

    @task(
        help={
            **{k: HELP[k] for k in ("stage", "instance", "hosts", "roles", "json")},
            "ref": "Compare with this ref (default HEAD).",
        }
    )
    def pending(c, stage=None, instance=None, hosts=None, roles=None, ref="HEAD", json=False):
        """List the commits between what is live on a stage and a local ref."""
        from .manage import pending as run

        _run(root, Options(stage, hosts, roles, json, instance=instance), lambda cfg, rep: run(cfg, rep, ref))

    @task(
        help={
            **HELP,
            "schedule": "Install on each host a systemd timer (or cron entry) that cleans up regularly.",
            "unschedule": "Remove that scheduled cleanup.",
        }
    )
    def cleanup(
        c,
        stage=None,
        instance=None,
        hosts=None,
        roles=None,
        dry_run=False,
        schedule=False,
        unschedule=False,
        json=False,
        verbose=False,
        quiet=False,
    ):
        """Remove old releases beyond keep_releases (never current or the rollback target)."""
        from .manage import cleanup as run

        def action(cfg, rep):
            from . import schedule as sched

            if schedule:
                return sched.schedule_cleanup(cfg, rep, sched.Schedule(**cfg.schedule))
            if unschedule:
                return sched.unschedule_cleanup(cfg, rep)
            return run(cfg, rep, dry_run=dry_run)

        if schedule and unschedule:
            raise Exit("error: cleanup: choose one of --schedule and --unschedule", 2)
        _run(root, Options(stage, hosts, roles, json, verbose, quiet, instance=instance), action)

    @task(help={k: HELP[k] for k in ("stage", "instance", "hosts", "roles", "json", "verbose")})
    def check(c, stage=None, instance=None, hosts=None, roles=None, json=False, verbose=False):
        """Reach every host and verify permissions, free disk and layout; change nothing."""
        from .manage import check as run

        def action(cfg, rep):
            reports = run(cfg, rep)
            if any(r.unreachable for r in reports.values()):
                raise Exit("error: check: some hosts are unreachable (see above)", 4)
            if any(r.problems for r in reports.values()):
                raise Exit("error: check found problems (see above)", 1)

        _run(root, Options(stage, hosts, roles, json, verbose, instance=instance), action)

    @task(
        help={k: HELP[k] for k in ("stage", "instance", "hosts", "roles")}
        | {"yes": "Really remove the instance."}
    )
    def destroy(c, stage=None, instance=None, hosts=None, roles=None, yes=False):
        """Remove an instance of a template stage (a review app) from every host."""
        from .manage import destroy as run

        def action(config, rep):
            if not config.instance:
                raise Exit(
                    f"error: destroy: stage {config.stage} is not a template stage; destroy only removes "
                    "instances of template stages (review apps)",
                    2,
                )
            if not yes:
                raise Exit(
                    f"error: destroy: this removes {config.deploy_to} on {len(config.hosts)} host(s); "
                    "add --yes to confirm",
                    2,
                )
            run(config, rep)

        _run(root, Options(stage, hosts, roles, instance=instance), action)

    @task(help={k: HELP[k] for k in ("stage", "instance", "hosts", "roles")})
    def unlock(c, stage=None, instance=None, hosts=None, roles=None):
        """Break a stale deploy lock on every host, showing who held it and since when."""
        from .manage import unlock as run

        _run(root, Options(stage, hosts, roles, instance=instance), run)

    tasks = (deploy, rollback, promote, releases, history, pending, cleanup, check, unlock, destroy)
    for body in tasks:
        body.__doc__ = (body.__doc__ or "") + "\n\n" + EXIT_CODES
    return Collection(*tasks)


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: invoke --list (in a folder with tasks.py)")
