"""Invoke tasks: flags in, one call into the package, errors out as one line and an exit code.

``tasks.py`` in a project calls :func:`make_collection` with its own folder, so
``config/`` and ``templates/`` are found next to it wherever the project lives. Every
task is declared once, in :data:`TASKS`: its flags (shared ones from :data:`FLAGS`), the
checks its flags need before any config is read, and the one call it makes. Heavy
modules (Fabric, Paramiko, Jinja2) are imported only by the task that needs them.
"""

from __future__ import annotations

import inspect
import json as jsonlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from invoke import Collection, Exit, Task

from . import dial
from .errors import ConfigError, DeployerError
from .flags import FLAGS, OUTPUT, TARGET, Flag, _own
from .recipes.summary import print_summary
from .targets import select_hosts
from .untrusted import one_line

EXIT_CODES = (
    "Exit codes: 0 ok; 1 failed (nothing switched, or switched back); 2 config, usage or "
    "artifact error; 3 lock held; 4 host unreachable; 5 rollback crosses migrations (choose how); "
    "130 interrupted."
)


@dataclass(frozen=True)
class Call:
    """One run of a task: the project root and the flags as given."""

    root: Path
    args: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.args.get(name)

    def number(self, name: str) -> int | None:
        """A flag that takes a release number (or a count)."""
        value = self.args.get(name)
        if value is None:
            return None
        if not str(value).isdigit():
            raise Exit(f"error: --{name}: expected a release number, got {value!r}", 2)
        return int(value)


Action = Callable[[Call, Any, Any], object]  # (call, config, reporter)


@dataclass(frozen=True)
class TaskSpec:
    name: str
    doc: str
    flags: tuple[str, ...]
    action: Action
    own: dict[str, Flag] = field(default_factory=dict)
    check: Callable[[Call], None] = lambda call: None  # usage errors, before any config is read
    numbers: tuple[str, ...] = ()  # flags that take a release number (or a count)
    stage_flag: str = "stage"


# -- what each task does ---------------------------------------------------------------


def _deploy(call: Call, config, reporter) -> None:
    from .recipes.deploy import deploy

    flags = {name: call[name] for name in ("force_unlock", "dry_run", "ref", "force")}
    print_summary(reporter, deploy(config, reporter, **flags))


DATA_CHOICES = {"migrate_down": "migrate-down", "with_data": "with-data", "code_only": "code-only"}


def _check_rollback(call: Call) -> None:
    chosen = [flag for flag in DATA_CHOICES if call[flag]]
    if len(chosen) > 1:
        raise Exit("error: rollback: give at most one of --migrate-down, --with-data, --code-only", 2)
    if call["yes"] and not call["with_data"]:
        raise Exit("error: rollback: --yes confirms --with-data; give it only with --with-data", 2)


def _rollback(call: Call, config, reporter) -> None:
    from .recipes.dataroll import DataChoice
    from .recipes.rollback import ask_reason, rollback

    may_ask = not call["json"] and not call["dry_run"]
    reason = ask_reason(call["reason"], may_ask=may_ask)
    choice = next((DATA_CHOICES[flag] for flag in DATA_CHOICES if call[flag]), None)
    data = DataChoice(choice, yes=bool(call["yes"]), may_ask=may_ask)
    summary = rollback(config, reporter, call.number("to"), dry_run=call["dry_run"], reason=reason, data=data)
    print_summary(reporter, summary)


def _check_promote(call: Call) -> None:
    if not call["from_"] or not call["to"]:
        raise Exit("error: promote: give both --from=<stage> and --to=<stage>", 2)


def _promote(call: Call, target, reporter) -> None:
    from . import config as cfg
    from .recipes.promote import promote

    source = cfg.load(call.root, call["from_"])
    summary = promote(
        source,
        target,
        reporter,
        call.number("release"),
        dry_run=call["dry_run"],
        unverified=call["unverified"],
        force=call["force"],
    )
    print_summary(reporter, summary)


def _releases(call: Call, config, reporter) -> None:
    from .recipes.status import releases

    releases(config, reporter)


def _history(call: Call, config, reporter) -> None:
    from .recipes.status import history

    limit = call.number("limit")
    history(config, reporter, 50 if limit is None else limit)


def _pending(call: Call, config, reporter) -> None:
    from .recipes.status import pending

    pending(config, reporter, call["ref"])


def _metrics(call: Call, config, reporter) -> None:
    from .recipes.metrics import metrics

    metrics(config, reporter, since=call["since"], until=call["until"], html=call["html"])


def _check_cleanup(call: Call) -> None:
    if call["schedule"] and call["unschedule"]:
        raise Exit("error: cleanup: choose one of --schedule and --unschedule", 2)


def _cleanup(call: Call, config, reporter) -> None:
    from .recipes import cleanup, schedule

    if call["schedule"]:
        schedule.schedule_cleanup(config, reporter)
    elif call["unschedule"]:
        schedule.unschedule_cleanup(config, reporter)
    else:
        cleanup.cleanup(config, reporter, dry_run=call["dry_run"])


def _check(call: Call, config, reporter) -> None:
    from .recipes.status import check

    reports = check(config, reporter)
    if any(r.unreachable for r in reports.values()):
        raise Exit("error: check: some hosts are unreachable (see above)", 4)
    if any(r.problems for r in reports.values()):
        raise Exit("error: check found problems (see above)", 1)


def _destroy(call: Call, config, reporter) -> None:
    from .recipes.admin import destroy

    if not config.instance:
        raise Exit(
            f"error: destroy: stage {config.stage} is not a template stage; destroy only removes "
            "instances of template stages (review apps)",
            2,
        )
    if not call["yes"]:
        raise Exit(
            f"error: destroy: this removes {config.deploy_to} on {len(config.hosts)} host(s); "
            "add --yes to confirm",
            2,
        )
    destroy(config, reporter)


def _check_maintenance(call: Call) -> None:
    if bool(call["on"]) == bool(call["off"]) or (call["reason"] is not None and not call["on"]):
        raise Exit("error: maintenance: give either --on (optionally with --reason=TEXT) or --off", 2)


def _maintenance(call: Call, config, reporter) -> None:
    from .recipes.maintenance import maintenance

    maintenance(config, reporter, bool(call["on"]), call["reason"], dry_run=bool(call["dry_run"]))


def _unlock(call: Call, config, reporter) -> None:
    from .recipes.admin import unlock

    unlock(config, reporter)


TASKS = (
    TaskSpec(
        "deploy", "Deploy the artifact to every host of a stage (build, upload, hooks, atomic switch).",
        (*TARGET, "ref", "dry_run", "force_unlock", "force", *OUTPUT), _deploy,
        own=_own("ref", "force_unlock", "force"),
    ),
    TaskSpec(
        "rollback", "Switch every host back to the previous good release, instantly (no upload).",
        ("stage", "instance", "to", "reason", *DATA_CHOICES, "yes", "hosts", "roles", "dry_run", *OUTPUT),
        _rollback, own=_own("to", "rollback_reason", *DATA_CHOICES, "data_yes"),
        check=_check_rollback, numbers=("to",),
    ),
    TaskSpec(
        "promote", "Deploy to --to exactly the artifact live on --from (same sha256), no rebuild.",
        ("from_", "to", "release", "unverified", "force", "dry_run", *OUTPUT), _promote,
        own=_own("from_", "to_stage", "release", "unverified", "force"),
        check=_check_promote, numbers=("release",), stage_flag="to",
    ),
    TaskSpec(
        "releases", "List each host's releases: current, status, when and by whom, sha256.",
        (*TARGET, "json"), _releases,
    ),
    TaskSpec(
        "history", "List every event of a stage: deploys, rollbacks, cleanups, failures.",
        (*TARGET, "json", "limit"), _history, own=_own("limit"),
        numbers=("limit",),
    ),
    TaskSpec(
        "pending", "List the commits between what is live on a stage and a local ref.",
        (*TARGET, "ref", "json"), _pending, own=_own("compare"),
    ),
    TaskSpec(
        "metrics", "The four DORA keys and the incidents of a stage, from its release log.",
        (*TARGET, "since", "until", "json", "html"), _metrics, own=_own("since", "until", "html"),
    ),
    TaskSpec(
        "cleanup", "Remove old releases beyond keep_releases (never current or the rollback target).",
        (*TARGET, "dry_run", "schedule", "unschedule", *OUTPUT), _cleanup, own=_own("schedule", "unschedule"),
        check=_check_cleanup,
    ),
    TaskSpec(
        "check", "Reach every host and verify permissions, free disk and layout; change nothing.",
        (*TARGET, "json", "verbose"), _check,
    ),
    TaskSpec(
        "destroy", "Remove an instance of a template stage (a review app) from every host.",
        (*TARGET, "yes"), _destroy, own=_own("yes"),
    ),
    TaskSpec(
        "maintenance", "Put up (--on) or take down (--off) the maintenance page; takes no deploy lock.",
        (*TARGET, "on", "off", "reason", "dry_run", *OUTPUT), _maintenance, own=_own("on", "off", "reason"),
        check=_check_maintenance,
    ),
    TaskSpec(
        "unlock", "Break a stale deploy lock on every host, showing who held it and since when.",
        TARGET, _unlock,
    ),
)  # fmt: skip


# -- running a task --------------------------------------------------------------------


# Tasks that connect to every selected host as soon as they start.
DIALS = {"deploy", "rollback", "releases", "check", "cleanup", "unlock", "maintenance"}


@dataclass
class Options:
    stage: str | None = None
    hosts: str | None = None
    roles: str | None = None
    json: bool = False
    verbose: bool = False
    quiet: bool = False
    instance: str | None = None
    command: str = ""


def _stage(root: Path, stage: str | None) -> str:
    from . import NAME
    from . import config as cfg

    if not (root / "config").is_dir():  # `init` is the program's (with or without a tasks.py)
        raise ConfigError(f"no config/ folder in {root}: `{NAME} init` writes one")

    chosen = stage or os.environ.get("DEPLOYER_STAGE") or cfg.default_stage(root)
    if not chosen:
        stages = ", ".join(cfg.list_stages(root)) or "none"
        raise ConfigError(
            f"--stage: no stage given and no default_stage in config/deploy.yml (stages: {stages})"
        )
    return chosen


def _run(root: Path, opts: Options, action: Callable):
    """Load config, run the action, and turn every failure into ``Exit`` with one line."""
    from . import config as cfg
    from .envkeys import secret_values
    from .output import Reporter

    reporter = Reporter(quiet=opts.quiet, verbose=opts.verbose, json_mode=opts.json)
    started = time.monotonic()
    try:
        opts.stage = _stage(root, opts.stage)  # named by the job summary, even when loading fails
        config = select_hosts(cfg.load(root, opts.stage, opts.instance), opts.hosts, opts.roles)
        if opts.command in DIALS:
            dial.dial(config)  # the first round trips overlap loading Paramiko
        for hook in config.notify:
            reporter.secrets.add_url(hook.url, whole=True)
        reporter.secrets.values.update(secret_values(config.ssh))
        return action(config, reporter)
    except DeployerError as exc:
        message = one_line(reporter.secrets.mask(exc.message))
        _failed_summary(opts, message, exc.exit_code, time.monotonic() - started)
        if opts.json:
            print(jsonlib.dumps({"ok": False, "error": message, "exit_code": exc.exit_code}), flush=True)
        raise Exit(f"error: {message}", exc.exit_code) from None
    except KeyboardInterrupt:
        raise Exit("error: interrupted", 130) from None
    except Exit:
        raise  # a task's own usage error, already one line
    except Exception as exc:
        if os.environ.get("DEPLOYER_DEBUG"):
            raise
        message = one_line(reporter.secrets.mask(f"{type(exc).__name__}: {exc}"))
        raise Exit(f"error: internal error: {message} (a bug: DEPLOYER_DEBUG=1 shows where)", 1) from None
    finally:
        dial.discard()
        reporter.end_progress()


def _failed_summary(opts: Options, message: str, code: int, seconds: float) -> None:
    """A failed deploy, rollback or promote says so in the CI job's summary too."""
    from . import stepsummary

    if opts.command in stepsummary.COMMANDS:
        stepsummary.append(stepsummary.failure(opts.command, opts.stage, message, code, seconds))


def _options(spec: TaskSpec, call: Call) -> Options:
    return Options(
        stage=call[spec.stage_flag], hosts=call["hosts"], roles=call["roles"], json=bool(call["json"]),
        verbose=bool(call["verbose"]), quiet=bool(call["quiet"]), instance=call["instance"],
        command=spec.name,
    )  # fmt: skip


def _make_task(spec: TaskSpec, root: Path) -> Task:
    """An Invoke task whose signature is the spec's flags, in order (Invoke reads flags,
    their kinds and short forms from the signature)."""
    flags = {**FLAGS, **spec.own}

    def body(c, **args):
        call = Call(root, args)
        spec.check(call)
        for name in spec.numbers:
            call.number(name)
        _run(root, _options(spec, call), lambda config, reporter: spec.action(call, config, reporter))

    context = inspect.Parameter("c", inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params = [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=flags[n].default)
        for n in spec.flags
    ]
    body.__signature__ = inspect.Signature([context, *params])  # type: ignore[attr-defined]
    body.__name__ = body.__qualname__ = spec.name
    body.__doc__ = f"{spec.doc}\n\n{EXIT_CODES}"
    helps = {n.rstrip("_").replace("_", "-"): flags[n].help for n in spec.flags}
    return Task(body, name=spec.name, help=helps)


def make_collection(root: str | Path) -> Collection:
    """The task collection for a project whose ``config/`` and ``templates/`` live in ``root``."""
    folder = Path(root).resolve()
    return Collection(*(_make_task(spec, folder) for spec in TASKS))


if __name__ == "__main__":  # pragma: no cover
    sys.exit("use: sternway --list (or invoke --list in a folder with tasks.py)")
