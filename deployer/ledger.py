"""What this machine deployed: the content of every artifact it checked, as it computed it.

A host can rewrite anything it holds, its log and its manifests included, so ``promote``
cannot take a host's word that a tree is the artifact deployed there. Two things can
vouch for a tree read back from a host:

- the ledger: every deploy records, on the deploying machine, the content digest of the
  artifact it checked, under the artifact's sha256 (``$XDG_STATE_HOME/deployer/built/``);
- a seal: with ``DEPLOYER_SEAL_KEY`` set (one secret shared by every machine that deploys,
  e.g. a CI secret), each deploy also logs an HMAC of (sha256, content digest). A host
  without the key cannot forge it, so a promote from another machine can verify too.

The content digest covers each path's kind and content, and each file's mode as a host
unpacks it (``--no-same-permissions`` under umask 022), so a loosened mode is a change.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from . import untrusted

if TYPE_CHECKING:
    from .artifact import Entry

SEAL_KEY_ENV = "DEPLOYER_SEAL_KEY"


def state_path(*parts: str) -> Path:
    """A path under ``$XDG_STATE_HOME/deployer`` (default ``~/.local/state/deployer``):
    records worth keeping, unlike the cache."""
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base, "deployer", *parts)


def content_digest(manifest: Mapping[str, Entry]) -> str:
    """One sha256 over every path's kind, content digest and, for files, mode as any host
    unpacks it (umask 022): a source host that loosens a 0600 file cannot pass it off."""
    lines = (
        f"{e.kind} {e.digest} {(e.mode & ~0o022) if e.kind == 'f' else '-'} {path}\n"
        for path, e in sorted(manifest.items())
    )
    return hashlib.sha256(("v2\n" + "".join(lines)).encode("utf-8")).hexdigest()


def _record(sha256: str) -> Path:
    return state_path("built-v2", f"{sha256}.json")  # v2: the digest covers file modes


def remember(sha256: str, content: str) -> None:
    """Record that this machine checked the artifact ``sha256`` and found ``content``."""
    path = _record(sha256)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps({"sha256": sha256, "content": content}))
        partial.replace(path)
    except OSError:
        pass  # without a record, a later promote of this artifact needs a seal or --unverified


def recall(sha256: str) -> str | None:
    """The content digest this machine recorded for ``sha256``, if any."""
    if not untrusted.is_sha256(sha256):
        return None
    try:
        data = untrusted.json_object(_record(sha256).read_text())
    except OSError:
        return None
    content = data.get("content") if data else None
    return content if untrusted.is_sha256(content) else None


def seal(sha256: str, content: str) -> str | None:
    """The seal to log with a deploy, or None when no key is set."""
    key = os.environ.get(SEAL_KEY_ENV)
    if not key:
        return None
    message = f"deployer-seal-v1 {sha256} {content}".encode()
    return hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def vouched(sha256: str, content: str, logged_seal: object) -> str | None:
    """How the tree with ``content`` is known to be the artifact ``sha256`` (a short
    phrase for the output), or None when nothing vouches for it."""
    if recall(sha256) == content:
        return "matches the artifact this machine deployed"
    expected = seal(sha256, content)
    if expected and untrusted.is_sha256(logged_seal) and hmac.compare_digest(expected, logged_seal):
        return f"sealed with {SEAL_KEY_ENV}"
    return None
