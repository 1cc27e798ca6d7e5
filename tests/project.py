"""A throwaway project (tasks.py, config/, templates/, an app) that deploys to test hosts.

State is always read from the hosts themselves (docker exec or the local folder), never
from the tool's own output.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from deployer import config as cfg
from deployer.config import deep_merge
from deployer.output import Reporter
from deployer.recipes import cleanup as cleanup_ops
from deployer.recipes import deploy as deploy_ops
from deployer.recipes import rollback as rollback_ops
from deployer.recipes import status

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Project:
    root: Path
    hosts: list
    key: Path | None
    deploy_to: str
    stage: str = "test"
    overrides: dict[str, Any] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)

    @classmethod
    def create(cls, root: Path, hosts: list, key: Path | None) -> Project:
        root = root / "proj"
        (root / "config").mkdir(parents=True)
        (root / "templates").mkdir()
        shutil.copy(REPO / "tasks.py", root / "tasks.py")
        app = root / "app"
        (app / "bin").mkdir(parents=True)
        (app / "index.html").write_text("hello\n")
        (app / "bin" / "migrate").write_text(
            '#!/bin/sh\necho "migrate $DEPLOYER_RELEASE" >> "$DEPLOYER_DEPLOY_TO/migrations.log"\n'
        )
        (app / "bin" / "migrate").chmod(0o755)
        (root / "templates" / "app.env.j2").write_text(
            "RELEASE={{ release }}\nHOST={{ host.name }}\nGREETING={{ vars.greeting }}\n"
        )
        local = not hosts
        deploy_to = "deployed" if local else f"/home/deploy/apps/{uuid.uuid4().hex[:10]}"
        project = cls(root, hosts, key, deploy_to)
        (root / "config" / "deploy.yml").write_text(
            yaml.safe_dump({"application": "demo", "keep_releases": 5, "artifact": {"path": "app"}})
        )
        if not local:
            known = root / "known_hosts"
            known.write_text("".join(h.host_key_line() + "\n" for h in hosts))
        project.write_stage()
        return project

    # -- config ---------------------------------------------------------------------
    def base_stage(self) -> dict[str, Any]:
        stage: dict[str, Any] = {
            "deploy_to": self.deploy_to,
            "templates": [{"src": "app.env.j2", "dest": "app.env"}],
            "vars": {"greeting": "hi"},
        }
        if self.hosts:
            stage["transport"] = "ssh"
            stage["hosts"] = [
                {
                    "host": "127.0.0.1",
                    "port": h.port,
                    "user": "deploy",
                    "roles": ["web", "db"] if i == 0 else ["web"],
                }
                for i, h in enumerate(self.hosts)
            ]
            stage["ssh"] = {
                "identity_file": str(self.key),
                "known_hosts": str(self.root / "known_hosts"),
                "connect_timeout": 5,
                "command_timeout": 30,
            }
        else:
            stage["transport"] = "local"
        return stage

    def write_stage(self) -> None:
        data = deep_merge(self.base_stage(), self.overrides)
        (self.root / "config" / f"{self.stage}.yml").write_text(yaml.safe_dump(data, sort_keys=False))

    def set(self, **overrides: Any) -> Project:
        self.overrides = deep_merge(self.overrides, overrides)
        self.write_stage()
        return self

    def config(self) -> cfg.Config:
        return cfg.load(self.root, self.stage)

    # -- actions (in process) -------------------------------------------------------
    def reporter(self) -> Reporter:
        class Capture:
            def write(inner, text: str) -> None:
                self.output.append(text)

            def flush(inner) -> None:
                pass

        return Reporter(stream=Capture())

    def deploy(self):
        return deploy_ops.deploy(self.config(), self.reporter())

    def rollback(self, to: int | None = None):
        return rollback_ops.rollback(self.config(), self.reporter(), to)

    def cleanup(self):
        return cleanup_ops.cleanup(self.config(), self.reporter())

    def releases(self):
        return status.releases(self.config(), self.reporter())

    def check(self):
        return status.check(self.config(), self.reporter())

    # -- actions (the real CLI) -----------------------------------------------------
    def invoke(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "invoke", *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )

    # -- state, read on the hosts ---------------------------------------------------
    @property
    def host_count(self) -> int:
        return len(self.hosts) or 1

    @property
    def absolute_deploy_to(self) -> str:
        return self.deploy_to if self.hosts else str(self.root / self.deploy_to)

    def sh(self, index: int, script: str, check: bool = True) -> str:
        if self.hosts:
            return self.hosts[index].sh(script, check=check)
        proc = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
        if check and proc.returncode != 0:
            raise AssertionError(f"{script!r} exited {proc.returncode}: {proc.stderr}")
        return proc.stdout

    def current(self, index: int = 0) -> str:
        return self.sh(index, f"readlink {self.absolute_deploy_to}/current || true").strip()

    def release_dirs(self, index: int = 0) -> list[int]:
        out = self.sh(index, f"ls -1 {self.absolute_deploy_to}/releases 2>/dev/null || true")
        return sorted(int(n) for n in out.split() if n.isdigit())

    def log(self, index: int = 0) -> list[dict]:
        out = self.sh(index, f"cat {self.absolute_deploy_to}/.deployer/log.jsonl 2>/dev/null || true")
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def exists(self, index: int, path: str) -> bool:
        return (
            self.sh(index, f"test -e {self.absolute_deploy_to}/{path} && echo yes || true").strip() == "yes"
        )

    def read(self, index: int, path: str) -> str:
        return self.sh(index, f"cat {self.absolute_deploy_to}/{path}")

    def lock_held(self, index: int = 0) -> bool:
        return self.exists(index, ".deployer/lock")

    def snapshot(self, index: int = 0) -> str:
        """Every path under deploy_to with its type and link target: to prove nothing changed."""
        return self.sh(
            index,
            f"cd {self.absolute_deploy_to} 2>/dev/null && find . -printf '%y %p %l %s\\n' | sort || true",
        )

    # -- barriers: a hook waits for a file the test creates (never a sleep) ------------
    def barrier_hook(
        self, name: str, ticking: bool = True, limit: float = 120, folder: str | None = None
    ) -> str:
        """A hook command that marks ``<folder>/<name>.reached`` on its host (``folder``
        defaults to deploy_to), then waits until the test calls :meth:`release_barrier`
        (``<name>.go`` appears). It prints a tick every 0.2 s, so ``ssh.command_timeout``
        (a silence timeout) never fires, unless ``ticking`` is False. After ``limit``
        seconds it gives up and fails, so a forgotten barrier cannot hang anything."""
        where = folder or "$DEPLOYER_DEPLOY_TO"
        tick = "echo tick; " if ticking else ""
        return (
            f'touch "{where}/{name}.reached"; i=0; '
            f'while [ ! -e "{where}/{name}.go" ]; do i=$((i+1)); '
            f"if [ $i -gt {int(limit / 0.2)} ]; then "
            f'echo "barrier {name} never released" >&2; exit 99; fi; '
            f"{tick}sleep 0.2; done"
        )

    def reached(self, name: str, indexes: list[int] | None = None, folder: str | None = None) -> bool:
        """Has the barrier hook ``name`` started on every host in ``indexes`` (default all)?"""
        where = folder or self.absolute_deploy_to
        return all(
            self.sh(i, f"test -e {where}/{name}.reached && echo yes || true").strip() == "yes"
            for i in (range(self.host_count) if indexes is None else indexes)
        )

    def release_barrier(self, name: str, indexes: list[int] | None = None, folder: str | None = None) -> None:
        where = folder or self.absolute_deploy_to
        for i in range(self.host_count) if indexes is None else indexes:
            self.sh(i, f"mkdir -p {where} && touch {where}/{name}.go")

    @staticmethod
    def wait_until(predicate, what: str, timeout: float = 120, interval: float = 0.05):
        """Poll ``predicate`` until it returns something truthy; fail after a generous
        ``timeout`` (a deadline for a condition, not a window the test depends on)."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
            time.sleep(interval)
