"""What a deploy writes about a release: its metadata file, and the artifact URL of pull mode."""

from __future__ import annotations

import json

from ..config import Config
from ..localstate import whoami
from ..output import Secrets
from .eventlog import now_iso


def release_metadata(config: Config, number: int, sha256: str, revision: str | None) -> str:
    """``.deployer-release.json`` in the release: what it is, from where, by whom."""
    data = {
        "release": number,
        "sha256": sha256,
        "deployed_at": now_iso(),
        "deployed_by": whoami(),
        "revision": revision,
        "stage": config.stage,
        "application": config.application,
    }
    return json.dumps(data, sort_keys=True)


def artifact_url(config: Config, sha256: str, secrets: Secrets) -> str | None:
    """Pull mode's URL with its placeholders filled in; masked, as a signed link must not
    show in -v or --dry-run."""
    url = config.artifact_url
    if not url:
        return None
    for key, value in {"sha256": sha256, "application": config.application, "stage": config.stage}.items():
        url = url.replace("{" + key + "}", value)
    secrets.add_url(url)
    return url
