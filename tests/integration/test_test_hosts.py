"""The test hosts' own instruments, proved before other tests rely on them.

``SshHost.logins()`` counts "Accepted publickey" in sshd's log file. Tests assert "no new
login" with it, so it must never lag: the first command run over a fresh connection must
already see that connection's own login in the file.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.ssh


def test_login_counter_is_written_before_the_session_starts(ssh_hosts, ssh_key):
    host = ssh_hosts[0]
    for _ in range(3):
        before = host.logins()
        client = host.login(ssh_key)
        try:
            _, out, _ = client.exec_command(
                "cat /var/log/sshd.log.1 /var/log/sshd.log | grep -c 'Accepted publickey'"
            )
            seen_from_inside = int(out.read().decode().strip())
            # Two sessions on one connection are one login.
            client.exec_command("true")[1].read()
        finally:
            client.close()
        # The session-scoped hosts belong to one pytest worker: nobody else logs in meanwhile.
        assert seen_from_inside == before + 1
        assert host.logins() == before + 1
