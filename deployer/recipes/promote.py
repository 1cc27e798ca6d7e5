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

from .. import artifact as artifacts
from .. import commands, git, ledger, plan, releaselog, templates
from ..artifact import parse_manifest
from ..config import Config
from ..errors import DeployFailed
from ..facts import HostFacts
from ..fleet import Fleet, SessionOpener
from ..layout import MANIFEST_NAME
from ..notify import notifying
from ..output import Reporter
from ..transport import open_session
from .deploy import DeployRun
from .summary import Summary


def choose_source_release(stage: str, facts: dict[str, HostFacts], release: int | None) -> tuple[int, str]:
    """The release to promote and a source host that has it; refuses on disagreement."""
    if release is None:
        currents = {name: f.current for name, f in facts.items()}
        if all(c is None for c in currents.values()):
            raise DeployFailed(f"promote: nothing is live on stage {stage} yet")
        if len(set(currents.values())) != 1 or None in currents.values():
            detail = ", ".join(f"{n}: {c}" for n, c in currents.items())
            raise DeployFailed(
                f"promote: the hosts of {stage} disagree on what is current ({detail}); "
                "name one with --release"
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


def fetch_release(
    source: Config, reporter: Reporter, release: int | None, opener: SessionOpener, unverified: bool = False
) -> tuple[artifacts.Artifact, int, git.Revision | None]:
    """Read the release back from a source host; returns (artifact, release number, the
    revision it was deployed from). The tree must be vouched for (:mod:`deployer.ledger`)
    as the artifact the source's log names; with ``unverified`` an unvouched tree goes
    under the sha256 computed here of what was read, so it is never taken for that
    artifact (not by this promote, not by a later deploy of the real one)."""
    with Fleet.connect(source, reporter, opener=opener) as fleet:
        facts = fleet.probe()
        number, holder = choose_source_release(source.stage, facts, release)
        info = releaselog.deploy_info(plan.merged_log(facts))
        shas = releaselog.artifact_shas(info.values())
        if number not in shas:
            raise DeployFailed(
                f"promote: the release log of {source.stage} has no artifact sha256 for release {number}"
            )
        art = _read_verified(fleet, holder, number, f"release {number} of {source.stage}")
    claimed = shas[number]
    try:
        sha256, why = _vouch(source.stage, number, claimed, art, info[number], unverified)
    except BaseException:
        art.discard()
        raise
    reporter.line(
        f"promote: release {number} of {source.stage} (sha256 {sha256[:12]}), read from {holder}: {why}"
    )
    vouched = sha256 == claimed
    art = dataclasses.replace(art, sha256=sha256, temporary=True, vouched=vouched)
    return art, number, _revision(info[number])


def _vouch(
    stage: str, number: int, claimed: str, art: artifacts.Artifact, event: releaselog.Event, unverified: bool
) -> tuple[str, str]:
    """The sha256 to deploy the fetched tree under, and why it may be trusted."""
    content = ledger.content_digest(art.manifest)
    why = ledger.vouched(claimed, content, event.extra.get("seal"))
    if why:
        return claimed, why
    known = ledger.recall(claimed)
    if known is not None:
        raise DeployFailed(
            f"promote: release {number} of {stage} differs from the artifact sha256 {claimed[:12]} "
            "this machine deployed (changed on the host); refusing to promote it"
        )
    if unverified:
        return art.sha256, "UNVERIFIED (--unverified): shipped as the host holds it, under its own sha256"
    raise DeployFailed(
        f"promote: nothing vouches for release {number} of {stage} (sha256 {claimed[:12]}): this machine "
        f"did not deploy it and its log has no valid seal ({ledger.SEAL_KEY_ENV}); deploy the artifact "
        "instead, or pass --unverified to ship the tree as the host holds it"
    )


def _read_verified(fleet: Fleet, holder: str, number: int, label: str) -> artifacts.Artifact:
    """The release's artifact files as a local tar, checked file by file against the
    release's manifest; a release changed on the server is refused."""
    session = fleet.sessions[holder]
    manifest = session.run(commands.read_manifest(fleet.layout, number), read_only=True)
    if not manifest.ok or not manifest.stdout.strip():
        raise DeployFailed(
            f"host {holder}: release {number} has no manifest ({MANIFEST_NAME}); "
            "deploy it again before promoting"
        )
    # Kept past closing on purpose: it becomes the artifact, removed by its ``discard``.
    handle = tempfile.NamedTemporaryFile(  # noqa: SIM115
        prefix="deployer-promote-", suffix=".tar", delete=False
    )
    limit = fleet.config.max_unpacked_size + FETCH_SLACK
    try:
        with handle:
            result = session.fetch(
                commands.pack_release(fleet.layout, number), _Capped(handle, limit, holder)
            )
    except BaseException:
        os.unlink(handle.name)
        raise
    try:
        if not result.ok:
            raise DeployFailed(f"host {holder}: reading release {number} failed: {result.output_tail()}")
        art = artifacts.inspect(Path(handle.name), fleet.config.max_unpacked_size, label)
        differ = same_content(art.manifest, parse_manifest(manifest.stdout.encode()))
        if differ:
            raise DeployFailed(
                f"host {holder}: release {number} was changed on the server since it was deployed "
                f"({len(differ)} path(s), e.g. {differ[0]}); refusing to promote it"
            )
    except BaseException:
        os.unlink(handle.name)
        raise
    return art


FETCH_SLACK = 64 * 1024 * 1024  # tar headers and padding on top of the unpacked size


class _Capped:
    """A file that refuses to grow past ``limit`` bytes: a source host that sends without
    end fills no disk (``artifact.max_unpacked_size`` bounds what is read back)."""

    def __init__(self, handle, limit: int, holder: str) -> None:
        self.handle, self.limit, self.holder, self.count = handle, limit, holder, 0

    def write(self, data: bytes) -> None:
        self.count += len(data)
        if self.count > self.limit:
            raise DeployFailed(
                f"host {self.holder}: the release read back passed {self.limit} bytes "
                "(artifact.max_unpacked_size); refusing to promote it"
            )
        self.handle.write(data)

    def fileno(self) -> int:
        """For ``transport: local``, whose command writes straight to the file: that host is
        this machine, the one place the cap is not for."""
        return self.handle.fileno()


def _revision(event: releaselog.Event) -> git.Revision | None:
    """The revision a release was built from, as its deploy logged it."""
    if not event.revision:
        return None
    return git.Revision(
        event.revision.removesuffix("-dirty"),
        event.note("author"),
        event.note("subject"),
        event.revision.endswith("-dirty"),
    )


@notifying("promote", "promote", config_arg="target")
def promote(
    source: Config,
    target: Config,
    reporter: Reporter,
    release: int | None = None,
    *,
    opener: SessionOpener = open_session,
    dry_run: bool = False,
    unverified: bool = False,
    force: bool = False,
) -> Summary:
    """Deploy to ``target`` the artifact that is current (or ``release``) on ``source``
    (``force``: even one rolled back or failed on ``target``)."""
    for host in target.hosts:  # the target's templates must render before anything moves
        templates.render_host(target, host, 0, reporter.secrets)
    art, number, revision = fetch_release(source, reporter, release, opener, unverified)
    detail = f"from {source.stage} release {number}"
    try:
        with (
            Fleet.connect(target, reporter, opener=opener, dry_run=dry_run) as fleet,
            fleet.locked("promote") as facts,
        ):
            run = DeployRun(
                fleet, art, facts, command="promote", detail=detail, revision=revision, force=force
            )
            return run.execute()
    finally:
        art.discard()
