"""Promote: deploy to one stage exactly what is live on another, without rebuilding.

The release is read back from a source host as a tar of the paths its manifest lists
(so per-host files such as rendered templates and shared links stay behind), checked
against that manifest file by file, and deployed to the target stage under the original
artifact's sha256, rendered with the target's own config, templates and hooks. A target
host that already holds that artifact gets a hard-linked copy and no bytes at all.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from . import artifact as artifacts
from . import git, plan, releaselog, templates
from .artifact import parse_manifest
from .config import Config
from .deploy import DeployRun, Summary
from .errors import DeployFailed
from .facts import HostFacts
from .fleet import Fleet, SessionOpener
from .layout import MANIFEST_NAME
from .notify import notified
from .output import Reporter
from .shell import quote
from .transport import open_session


def pack_release_command(release_dir: str) -> str:
    """Tar (to stdout) exactly the paths of a release's manifest, in manifest order."""
    return (
        f"cd {quote(release_dir)} && gzip -dc {MANIFEST_NAME} | cut -d' ' -f4- | tr '\\n' '\\0' "
        f"| tar -cf - --no-recursion --null -T -"
    )


def choose_source_release(stage: str, facts: dict[str, HostFacts], release: int | None) -> tuple[int, str]:
    """The release to promote and a source host that has it; refuses on disagreement."""
    if release is None:
        currents = {name: f.current for name, f in facts.items()}
        if all(c is None for c in currents.values()):
            raise DeployFailed(f"promote: nothing is live on stage {stage} yet")
        if len(set(currents.values())) != 1 or None in currents.values():
            detail = ", ".join(f"{n}: {c}" for n, c in currents.items())
            raise DeployFailed(
                f"promote: the hosts of {stage} disagree on what is current ({detail}); name one with --release"
            )
        release = next(iter(currents.values()))
    holders = [name for name, f in facts.items() if release in f.complete]
    if not holders:
        raise DeployFailed(f"promote: release {release} is not on any host of {stage}")
    return release, holders[0]


def same_content(found: dict[str, artifacts.Entry], recorded: dict[str, artifacts.Entry]) -> list[str]:
    """Paths whose kind or content differ (modes are left out: unpacking applies the umask)."""
    paths = set(found) | set(recorded)
    return sorted(
        p
        for p in paths
        if (found.get(p) and (found[p].kind, found[p].digest))
        != (recorded.get(p) and (recorded[p].kind, recorded[p].digest))
    )


def fetch_release(source: Config, reporter: Reporter, release: int | None, opener: SessionOpener):
    """Read the release back from a source host; returns (artifact, release number, the
    revision it was deployed from)."""
    with Fleet.connect(source, reporter, opener=opener) as fleet:
        facts = fleet.probe()
        number, holder = choose_source_release(source.stage, facts, release)
        info = releaselog.deploy_info(plan.merged_log(facts))
        shas = releaselog.artifact_shas(info.values())
        if number not in shas:
            raise DeployFailed(
                f"promote: the release log of {source.stage} has no artifact sha256 for release {number}"
            )
        session = fleet.sessions[holder]
        release_dir = fleet.layout.release(number)
        manifest = session.run(f"gzip -dc {quote(release_dir + '/' + MANIFEST_NAME)}", read_only=True)
        if not manifest.ok or not manifest.stdout.strip():
            raise DeployFailed(
                f"host {holder}: release {number} has no manifest ({MANIFEST_NAME}); deploy it again before promoting"
            )
        handle = tempfile.NamedTemporaryFile(prefix="deployer-promote-", suffix=".tar", delete=False)
        with handle:
            result = session.fetch(pack_release_command(release_dir), handle)
        try:
            if not result.ok:
                raise DeployFailed(f"host {holder}: reading release {number} failed: {result.output_tail()}")
            art = artifacts.inspect(
                Path(handle.name), source.max_unpacked_size, f"release {number} of {source.stage}"
            )
            differ = same_content(art.manifest, parse_manifest(manifest.stdout.encode()))
            if differ:
                raise DeployFailed(
                    f"host {holder}: release {number} was changed on the server since it was deployed "
                    f"({len(differ)} path(s), e.g. {differ[0]}); refusing to promote it"
                )
        except BaseException:
            os.unlink(handle.name)
            raise
    reporter.line(
        f"promote: release {number} of {source.stage} (sha256 {shas[number][:12]}), read from {holder}"
    )
    event = info[number]
    revision = None
    if event.revision:
        revision = git.Revision(
            event.revision.removesuffix("-dirty"),
            str(event.extra.get("author") or ""),
            str(event.extra.get("subject") or ""),
            event.revision.endswith("-dirty"),
        )
    return dataclasses.replace(art, sha256=shas[number], temporary=True), number, revision


def promote(
    source: Config,
    target: Config,
    reporter: Reporter,
    release: int | None = None,
    opener: SessionOpener = open_session,
    dry_run: bool = False,
) -> Summary:
    """Deploy to ``target`` the artifact that is current (or ``release``) on ``source``."""
    return notified(
        target,
        reporter,
        "promote",
        "promote",
        lambda: _promote(source, target, reporter, release, opener, dry_run),
        dry_run,
    )


def _promote(
    source: Config,
    target: Config,
    reporter: Reporter,
    release: int | None,
    opener: SessionOpener,
    dry_run: bool,
) -> Summary:
    secrets = reporter.secrets
    for host in target.hosts:  # the target's templates must render before anything moves
        templates.render_host(target, host, 0, secrets)
    art, number, revision = fetch_release(source, reporter, release, opener)
    try:
        with (
            Fleet.connect(target, reporter, opener=opener, dry_run=dry_run) as fleet,
            fleet.locked("promote") as facts,
        ):
            run = DeployRun(
                fleet,
                art,
                secrets,
                command="promote",
                detail=f"from {source.stage} release {number}",
                revision=revision,
                local_revision=False,
            )
            summary = run.execute(facts)
            summary.dry_run = dry_run
            return summary
    finally:
        art.discard()
