"""Recipe B (docs/recipes.md) under load: a static site served by nginx from
``current/public``, deployed with exactly examples/static's config. No hook, no reload:
nginx resolves ``current`` on every request."""

from __future__ import annotations

import pytest
from test_stack_gunicorn import deploy_ok, under_load

pytestmark = [pytest.mark.stack, pytest.mark.ssh]


def test_deploy_and_rollback(static_site):
    deploy_ok(static_site)
    (static_site.root / "site" / "public" / "index.html").write_text("<p>version two</p>\n")
    under_load(static_site, "static: deploy v1 -> v2", "release 2", "deploy", path="/release.txt")
    assert static_site.hosts[0].get("/") == (200, "<p>version two</p>\n")
    under_load(static_site, "static: rollback v2 -> v1", "release 1", "rollback", path="/release.txt")
    status, body = static_site.hosts[0].get("/")
    assert status == 200 and "A static site deployed with deployer" in body


def test_trap_open_file_cache_serves_the_old_release_after_the_switch(tmp_path, web_hosts, ssh_key):
    """Why the recipe's server block has no open_file_cache: nginx keeps the open file of
    a path name, and ``current/public/release.txt`` is the same name after the switch."""
    from web import EXAMPLES, RecipeProject, install_site

    conf = tmp_path / "site.conf"
    text = (EXAMPLES / "static" / "nginx" / "site.conf").read_text()
    conf.write_text(
        text.replace(
            "    index index.html;\n",
            "    index index.html;\n    open_file_cache max=100 inactive=600s;\n    open_file_cache_valid 600s;\n",
        )
    )
    host = web_hosts[0]
    install_site(host, conf, "/srv/site")
    site = RecipeProject.from_example("static", tmp_path, web_hosts, ssh_key, "/srv/site")
    deploy_ok(site)
    assert {host.get("/release.txt")[1] for _ in range(60)} == {"release 1\n"}  # every worker has it open
    deploy_ok(site)
    assert site.current() == "releases/2"
    assert "release 1\n" in {host.get("/release.txt")[1] for _ in range(60)}
