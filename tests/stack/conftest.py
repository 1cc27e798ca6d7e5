"""Fixtures of the stack tests: web hosts (nginx + Debian's gunicorn) per test, and the
recipes of docs/recipes.md as projects. Every test here is marked ``stack`` (and ``ssh``:
it needs Docker); each starts its own containers, so xdist spreads them over workers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from web import EXAMPLES, RecipeProject, build_web_image, install_site, start_web_hosts


@pytest.fixture(scope="session")
def web_image() -> str:
    return build_web_image()


@pytest.fixture
def web_hosts(request, web_image, ssh_key):
    """``count`` fresh web hosts (indirect parameter, default 1), stopped after the test."""
    count = getattr(request, "param", 1)
    hosts = start_web_hosts(web_image, (ssh_key.parent / "id_ed25519.pub").read_text().strip(), count)
    yield hosts
    for host in hosts:
        host.stop()


def recipe(name: str, conf: str, deploy_to: str, tmp_path, hosts, key) -> RecipeProject:
    for host in hosts:
        install_site(host, EXAMPLES / name / "nginx" / conf, deploy_to)
    return RecipeProject.from_example(name, tmp_path, hosts, key, deploy_to)


@pytest.fixture
def gunicorn_app(tmp_path, web_hosts, ssh_key) -> RecipeProject:
    """Recipe A: examples/gunicorn behind its nginx server block, on every web host."""
    return recipe("gunicorn", "hello.conf", "/srv/hello", tmp_path, web_hosts, ssh_key)


@pytest.fixture
def static_site(tmp_path, web_hosts, ssh_key) -> RecipeProject:
    """Recipe B: examples/static behind its nginx server block."""
    return recipe("static", "site.conf", "/srv/site", tmp_path, web_hosts, ssh_key)


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if "web_image" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stack)
            item.add_marker(pytest.mark.ssh)
