"""The user's own ~/.ssh/config is honoured (alias, HostName, Port, User, IdentityFile)."""

from __future__ import annotations

import pytest
import yaml

pytestmark = pytest.mark.ssh


def test_a_host_alias_from_ssh_config_works(project, tmp_path):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    host = project.hosts[0]
    (home / ".ssh" / "config").write_text(
        f"Host app-alias\n  HostName 127.0.0.1\n  Port {host.port}\n  User deploy\n  IdentityFile {project.key}\n"
    )
    stage = {
        "transport": "ssh",
        "deploy_to": project.deploy_to,
        "hosts": [{"host": "app-alias"}],
        "ssh": {"known_hosts": str(project.root / "known_hosts")},
    }
    (project.root / "config" / "aliased.yml").write_text(yaml.safe_dump(stage))
    result = project.invoke("deploy", "--stage=aliased", env={"HOME": str(home)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert project.current(0) == "releases/1"
    assert "app-alias" in result.stdout
