"""The SSH transport returns complete output: the exit status can arrive before the last
bytes of stdout, and the command's result must not be cut short."""

from __future__ import annotations

import pytest

from deployer.config import load
from deployer.ssh import connect

pytestmark = pytest.mark.ssh


def test_output_is_never_cut_short(project):
    config = load(project.root, "test")
    session = connect(config, config.hosts[0])
    try:
        session.run("head -c 51200 /dev/urandom > /tmp/fifty-k")
        lengths = {len(session.run("base64 < /tmp/fifty-k").stdout) for _ in range(150)}
        assert lengths == {69167}
        err = session.run("head -c 40000 /dev/zero | tr '\\\\0' x >&2; exit 3")
        assert err.exit_code == 3 and len(err.stderr) == 40000
    finally:
        session.close()
