"""Fake hosts for the fast tier: every script really runs, in a folder per host, and a
host fails exactly where a test tells it to.

A :class:`FakeSession` is handed to the recipes through the ``opener`` seam in place of
an SSH session. It records every script it is sent, runs it with ``/bin/sh`` on this
machine against the host's own folder (``deploy_to`` is rewritten to that folder on the
way in, and back on the way out, so recorded scripts and messages read as on a server),
and fails on cue: a command that exits non-zero, a connection that drops, or Ctrl-C
pressed while the command runs. State is then read from the folders, as the Docker tier
reads it from containers.
"""

from __future__ import annotations

import _thread
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from deployer.config import Config, Host
from deployer.errors import HostUnreachable, Interrupted
from deployer.transport import LocalSession, Progress, Result, no_trace

EXIT, DROP, INTERRUPT = "exit", "drop", "interrupt"


@dataclass
class Cue:
    """Fail the first script whose label (see :func:`story.label`) starts with ``step``."""

    step: str
    how: str = EXIT
    used: bool = False


@dataclass
class FakeHost:
    """One pretend server: a folder standing in for its filesystem root."""

    name: str
    root: Path
    deploy_to: str
    received: list[str] = field(default_factory=list)
    cues: list[Cue] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        """Where this host's ``deploy_to`` really is."""
        return self.root / self.deploy_to.lstrip("/")

    def fail(self, step: str, how: str = EXIT) -> FakeHost:
        self.cues.append(Cue(step, how))
        return self

    def to_local(self, text: str) -> str:
        return text.replace(self.deploy_to, str(self.folder))

    def to_remote(self, text: str) -> str:
        return text.replace(str(self.folder), self.deploy_to)

    # -- state, read from the folder ------------------------------------------------
    def current(self) -> str | None:
        link = self.folder / "current"
        return str(link.readlink()) if link.is_symlink() else None

    def releases(self) -> list[int]:
        folder = self.folder / "releases"
        return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []

    def locked(self) -> bool:
        return (self.folder / ".deployer" / "lock").exists()

    def log(self) -> list[dict]:
        path = self.folder / ".deployer" / "log.jsonl"
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


class FakeSession:
    """A :class:`deployer.transport.Session` on a :class:`FakeHost`."""

    def __init__(self, host: Host, fake: FakeHost, label: Callable[[str], str], timeout: float = 30) -> None:
        self.host = host
        self.fake = fake
        self.label = label
        self.local = LocalSession(host, timeout)
        self.cancel = threading.Event()
        self.trace = no_trace

    def _cued(self, script: str) -> Cue | None:
        self.fake.received.append(script)
        name = self.label(script)
        for cue in self.fake.cues:
            if not cue.used and name.startswith(cue.step):
                cue.used = True
                return cue
        return None

    def _fail(self, cue: Cue) -> Result:
        if cue.how == DROP:
            raise HostUnreachable(f"host {self.host.name}: connection lost (fake: dropped on cue)")
        if cue.how == INTERRUPT:
            self._press_ctrl_c()
        return Result(1, "", "fake failure on cue")

    def _press_ctrl_c(self) -> None:
        """What Ctrl-C does to a remote command: SIGINT reaches the main thread, which
        sets the fleet's cancel event; the waiting command then gives up."""
        _thread.interrupt_main()
        deadline = time.monotonic() + 10
        while not self.cancel.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)  # in the main thread, KeyboardInterrupt is raised right here
        raise Interrupted("interrupted")

    def _back(self, result: Result) -> Result:
        return Result(
            result.exit_code, self.fake.to_remote(result.stdout), self.fake.to_remote(result.stderr)
        )

    def run(self, script: str, stdin: bytes | None = None, read_only: bool = False) -> Result:
        cue = self._cued(script)
        if cue:
            return self._fail(cue)
        return self._back(self.local.run(self.fake.to_local(script), stdin, read_only))

    def stream(self, script: str, chunks: Iterable[bytes], progress: Progress | None = None) -> Result:
        cue = self._cued(script)
        if cue:
            return self._fail(cue)
        self.local.cancel = self.cancel
        return self._back(self.local.stream(self.fake.to_local(script), chunks, progress))

    def fetch(self, script: str, sink: BinaryIO) -> Result:
        cue = self._cued(script)
        if cue:
            return self._fail(cue)
        return self._back(self.local.fetch(self.fake.to_local(script), sink))

    def close(self) -> None:
        pass


class FakeFleet:
    """Fake hosts by name, and the opener that connects to them (or fails to)."""

    def __init__(self, root: Path, names: Iterable[str], deploy_to: str, label: Callable[[str], str]) -> None:
        self.hosts = {n: FakeHost(n, root / n, deploy_to) for n in names}
        self.label = label
        self.unreachable: set[str] = set()

    def __getitem__(self, name: str) -> FakeHost:
        return self.hosts[name]

    def opener(self, config: Config, host: Host) -> FakeSession:
        if host.name in self.unreachable:
            raise HostUnreachable(f"host {host.name}: cannot connect (fake: unreachable)")
        fake = self.hosts[host.name]
        fake.folder.mkdir(parents=True, exist_ok=True)
        return FakeSession(host, fake, self.label, config.ssh.command_timeout)

    def forget(self) -> None:
        """Start recording afresh (after setting the scene)."""
        for fake in self.hosts.values():
            fake.received.clear()
            fake.cues.clear()
