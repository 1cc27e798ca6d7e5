"""The fast tier: recipes driven through the ``opener`` seam against fake hosts.

No container, no network: each fake host is a folder, every script really runs in it
with /bin/sh, and a host fails exactly where a test says. ``python3 -m pytest -m "not ssh"``
runs this tier with the unit tests.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from fakehost import FakeFleet
from story import label

from deployer.config import load
from deployer.output import Reporter

DEPLOY_TO = "/srv/demo"
HOSTS = ("web1", "web2", "web3")


class Stage:
    """A project with one stage on three fake hosts, and what its runs printed."""

    def __init__(self, root: Path) -> None:
        self.root = root / "project"
        self.fleet = FakeFleet(root / "hosts", HOSTS, DEPLOY_TO, label)
        self.printed: list[str] = []
        app = self.root / "app"
        (app / "bin").mkdir(parents=True)
        (app / "index.html").write_text("hello\n")
        # Mostly unchanged between releases, so a redeploy sends a delta.
        (app / "bin" / "serve").write_text("".join(f"line {i}\n" for i in range(2000)))
        (self.root / "templates").mkdir()
        (self.root / "templates" / "app.env.j2").write_text("HOST={{ host.name }}\n")
        self.settings: dict = {
            "application": "demo",
            "deploy_to": DEPLOY_TO,
            "keep_releases": 3,
            "artifact": {"path": "app"},
            "templates": [{"src": "app.env.j2", "dest": "app.env"}],
            "hosts": [{"host": name} for name in HOSTS],
        }
        self.write()

    def write(self) -> None:
        (self.root / "config").mkdir(exist_ok=True)
        (self.root / "config" / "test.yml").write_text(yaml.safe_dump(self.settings))

    def set(self, **settings) -> Stage:
        self.settings.update(settings)
        self.write()
        return self

    def config(self, stage: str = "test"):
        return load(self.root, stage)

    def reporter(self) -> Reporter:
        printed = self.printed

        class Capture:
            def write(self, text: str) -> None:
                printed.append(text)

            def flush(self) -> None:
                pass

        return Reporter(stream=Capture())

    def change_app(self, text: str) -> None:
        (self.root / "app" / "index.html").write_text(text)


@pytest.fixture
def stage(tmp_path, monkeypatch) -> Stage:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("DEPLOYER_USER", "tester@laptop")
    return Stage(tmp_path)
