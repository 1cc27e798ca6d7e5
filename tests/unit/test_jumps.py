"""Bastions as data: parsing proxy_jump, choosing a host's route, what check says of each
hop, config errors naming file and key, and the pool that shares one connection per hop."""

from __future__ import annotations

import threading

import pytest

from deployer import jumps
from deployer.bastion import RETRY_AFTER, HopFailed, Pool
from deployer.config import deep_merge, load
from deployer.errors import ConfigError, HostUnreachable
from deployer.jumps import Hop

from .test_config import GOOD, write

A, B = Hop("127.0.0.1", 2201, "deploy"), Hop("inner")


@pytest.mark.parametrize(
    "spec, hops",
    [
        ("deploy@127.0.0.1:2201", (A,)),
        ("deploy@127.0.0.1:2201,inner", (A, B)),
        (" deploy@127.0.0.1:2201 , inner ", (A, B)),
        ("bastion", (Hop("bastion"),)),
        ("ops@[::1]:22", (Hop("::1", 22, "ops"),)),
        ("none", ()),
        ("NONE", ()),
    ],
)
def test_proxy_jump_parses_like_openssh(spec, hops):
    assert jumps.parse(spec) == hops


@pytest.mark.parametrize(
    "spec, message",
    [
        ("deploy@", "'deploy@' is not [user@]host[:port] (or none)"),
        ("a,b:0", "hop 2 'b:0' is not [user@]host[:port]"),
        ("a,,b", "hop 2 '' is not"),
        ("ssh://a", "'ssh://a' is not"),
        ("a b", "'a b' is not"),
        ("a:99999", "'a:99999' is not"),
    ],
)
def test_a_bad_proxy_jump_says_which_hop(spec, message):
    with pytest.raises(ValueError) as info:
        jumps.parse(spec)
    assert str(info.value).startswith(message)


def test_the_host_wins_then_the_stage_then_ssh_config_and_none_stops_the_rest():
    assert jumps.choose("inner", "deploy@127.0.0.1:2201", "x") == (B,)
    assert jumps.choose(None, "deploy@127.0.0.1:2201", "x") == (A,)
    assert jumps.choose(None, None, "inner") == (B,)
    assert jumps.choose("none", "deploy@127.0.0.1:2201", "x") == ()
    assert jumps.choose(None, "none", "inner") == ()
    assert jumps.choose(None, None, None) == ()


def test_hops_are_named_as_errors_and_check_name_them():
    assert jumps.describe((A,)) == "bastion deploy@127.0.0.1:2201"
    assert jumps.describe((A, B)) == "bastion deploy@127.0.0.1:2201, then inner"
    assert jumps.reach((A,)) == "via bastion deploy@127.0.0.1:2201"
    assert jumps.reach((A, B)) == "via bastion inner (through deploy@127.0.0.1:2201)"


def test_check_blames_the_hop_that_failed_and_not_the_ones_behind_it():
    routes = {"web1": (A, B), "web2": (A, B), "db": (A,), "solo": ()}
    reasons = {
        "web1": f"host web1 {jumps.reach((A, B))}: unknown host key x",
        "web2": "host web2: authentication failed",  # its own problem, past both hops
        "db": None,
        "solo": None,
    }
    report = jumps.hop_report(routes, reasons)
    assert report == {
        "bastion deploy@127.0.0.1:2201": {"ok": True, "hosts": ["web1", "web2", "db"], "problem": None},
        "bastion deploy@127.0.0.1:2201, then inner": {"ok": True, "hosts": ["web1", "web2"], "problem": None},
    }
    reasons["web2"] = f"host web2 {jumps.reach((A,))}: cannot connect (refused)"
    reasons["db"] = f"host db {jumps.reach((A,))}: cannot connect (refused)"
    report = jumps.hop_report({"web2": (A, B), "db": (A,)}, reasons)
    assert report["bastion deploy@127.0.0.1:2201"] == {
        "ok": False,
        "hosts": ["web2", "db"],
        "problem": "cannot connect (refused)",
    }
    assert report["bastion deploy@127.0.0.1:2201, then inner"]["problem"].startswith("not reached")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"ssh": {"proxy_jump": "deploy@"}}, "config/prod.yml: ssh.proxy_jump: 'deploy@' is not"),
        (
            {"hosts": [{"host": "h1"}, {"host": "h2", "proxy_jump": "a,b c"}]},
            "config/prod.yml: hosts[1].proxy_jump: hop 2 'b c' is not",
        ),
        ({"ssh": {"proxy_jump": 22}}, "config/prod.yml: ssh.proxy_jump: expected a string, got 22"),
        (
            {"hosts": [{"host": "h1", "proxy_jump": ""}]},
            "config/prod.yml: hosts[0].proxy_jump: must not be empty",
        ),
    ],
)
def test_a_bad_proxy_jump_in_config_names_file_and_key(tmp_path, change, message):
    with pytest.raises(ConfigError) as info:
        load(write(tmp_path, {**GOOD, **change}), "prod")
    assert str(info.value).startswith(message), str(info.value)


def test_proxy_jump_from_the_defaults_file_is_named_there(tmp_path):
    with pytest.raises(ConfigError, match=r"^config/deploy.yml: ssh.proxy_jump: 'a@' is not"):
        load(write(tmp_path, GOOD, {"ssh": {"proxy_jump": "a@"}}), "prod")


def test_proxy_jump_reaches_the_typed_config(tmp_path):
    stage = deep_merge(GOOD, {"ssh": {"proxy_jump": "deploy@127.0.0.1:2201"}})
    stage["hosts"] = [{"host": "h1"}, {"host": "h2", "proxy_jump": "none"}]
    config = load(write(tmp_path, stage), "prod")
    assert config.ssh.proxy_jump == "deploy@127.0.0.1:2201"
    assert [h.proxy_jump for h in config.hosts] == [None, "none"]


class Conn:
    """Stands for an open SSH connection in the pool's bookkeeping (no SSH involved)."""

    def __init__(self, hop: Hop, parent: Conn | None) -> None:
        self.hop, self.parent, self.closed = hop, parent, False

    @property
    def transport(self) -> Conn:
        return self

    def is_active(self) -> bool:
        return not self.closed

    def close(self) -> None:
        self.closed = True


def test_one_connection_per_hop_serves_every_caller_and_closes_with_the_last():
    pool, dialed = Pool(), []
    gate = threading.Event()

    def dial(route, parent):
        gate.wait(10)
        dialed.append(route[-1])
        return Conn(route[-1], parent)

    leases = []
    threads = [
        threading.Thread(target=lambda: leases.append(pool.lease("s", (A, B), dial))) for _ in range(20)
    ]
    for thread in threads:
        thread.start()
    gate.set()
    for thread in threads:
        thread.join(10)
    assert dialed == [A, B] and len(leases) == 20
    inner = leases[0].conn
    assert inner.parent.hop == A and all(lease.conn is inner for lease in leases)
    for lease in leases[:-1]:
        lease.release()
    assert not inner.closed
    leases[-1].release()
    assert inner.closed and inner.parent.closed and pool.open_count() == 0


def test_a_failed_hop_fails_its_waiters_at_once_and_is_tried_again_later(monkeypatch):
    pool, calls = Pool(), []

    def dial(route, parent):
        calls.append(route)
        if route[-1] == B:
            raise HostUnreachable("bastion inner: cannot connect (refused)")
        return Conn(route[-1], parent)

    for _ in range(3):
        with pytest.raises(HopFailed) as info:
            pool.lease("s", (A, B), dial)
        assert info.value.depth == 2 and info.value.problem == "bastion inner: cannot connect (refused)"
    assert calls == [(A,), (A, B)]  # asked once; the others got the same reason
    assert pool.open_count() == 0  # the outer hop was given back
    import deployer.bastion as module

    later = module.time.monotonic() + RETRY_AFTER + 1
    monkeypatch.setattr(module.time, "monotonic", lambda: later)
    with pytest.raises(HopFailed):
        pool.lease("s", (A, B), dial)
    assert calls[2:] == [(A,), (A, B)]


def test_different_ssh_options_do_not_share_a_connection():
    pool = Pool()
    first = pool.lease("strict", (A,), lambda route, parent: Conn(route[-1], parent))
    second = pool.lease("accept-new", (A,), lambda route, parent: Conn(route[-1], parent))
    assert first.conn is not second.conn
