"""Golden cases for the pure decisions: numbering, rollback targets, cleanup."""

from __future__ import annotations

import pytest

from deployer import plan, releaselog
from deployer.config import Hook, Host
from deployer.errors import DeployFailed
from deployer.facts import COMPLETE, PARTIAL, HostFacts


def ev(release, status, event="deploy", at=None, id=None):
    return releaselog.Event(
        id=id or f"{event}{release}{status}",
        event=event,
        at=at or "",
        by="t",
        stage="s",
        release=release,
        status=status,
    )


def timeline(*pairs):
    return [ev(r, s, e, at=f"{i:04d}") for i, (e, r, s) in enumerate(pairs)]


def facts(releases, current, log=()):
    return HostFacts(exists=True, current=current, releases=dict.fromkeys(releases, COMPLETE), log=list(log))


def test_next_release_is_one_past_anything_seen_anywhere():
    a = facts([3, 4], 4, [ev(9, "failed")])
    b = facts([5], 5)
    assert plan.next_release({"a": a, "b": b}) == 10
    assert plan.next_release({"a": HostFacts()}) == 1


def test_rollback_skips_rolled_back_and_failed():
    log = timeline(
        ("deploy", 1, "active"),
        ("deploy", 2, "active"),
        ("deploy", 3, "active"),
        ("rollback", 2, "active"),
        ("rollback", 3, "rolled-back"),
        ("deploy", 4, "active"),
        ("deploy", 5, "failed"),
    )
    assert plan.rollback_candidates(log, current=4) == [2, 1]


def test_rollback_never_moves_forward():
    log = timeline(("deploy", 1, "active"), ("deploy", 2, "active"), ("rollback", 1, "active"))
    assert plan.rollback_candidates(log, current=1) == []


def test_choose_rollback_names_hosts_missing_the_target():
    log = timeline(("deploy", 1, "active"), ("deploy", 2, "active"))
    fleet = {"a": facts([1, 2], 2, log), "b": facts([2], 2, log)}
    with pytest.raises(DeployFailed, match=r"release 1 is not on host\(s\) b"):
        plan.choose_rollback(fleet, None)
    with pytest.raises(DeployFailed, match="release 7 is not on host"):
        plan.choose_rollback(fleet, 7)


def test_choose_rollback_without_log_uses_previous_complete_release():
    fleet = {"a": facts([1, 2, 3], 3), "b": facts([2, 3], 3)}
    assert plan.choose_rollback(fleet, None) == 2


def test_choose_rollback_with_nothing_earlier():
    with pytest.raises(DeployFailed, match="no earlier good release"):
        plan.choose_rollback({"a": facts([1], 1, timeline(("deploy", 1, "active")))}, None)


def test_cleanup_removes_broken_first_and_keeps_protected():
    fact = HostFacts(
        current=6, releases={1: COMPLETE, 2: COMPLETE, 3: PARTIAL, 4: COMPLETE, 5: COMPLETE, 6: COMPLETE}
    )
    statuses = {4: releaselog.FAILED}
    assert plan.cleanup_victims(fact, keep=2, protected={1}, statuses=statuses) == [2, 3, 4]
    assert plan.cleanup_victims(fact, keep=10, protected=set(), statuses={}) == [3]


def test_cleanup_never_removes_current_even_when_old():
    fact = HostFacts(current=1, releases=dict.fromkeys(range(1, 6), COMPLETE))
    assert plan.cleanup_victims(fact, keep=2, protected=set(), statuses={}) == [2, 3]


def test_once_hook_prefers_db_role_and_roles_filter():
    hosts = [Host("a", roles=("web",)), Host("b", roles=("web", "db")), Host("c", roles=("worker",))]
    assert [h.host for h in plan.hook_hosts(Hook("x", once=True), hosts)] == ["b"]
    assert [h.host for h in plan.hook_hosts(Hook("x", once=True, roles=("worker",)), hosts)] == ["c"]
    assert [h.host for h in plan.hook_hosts(Hook("x", roles=("web",)), hosts)] == ["a", "b"]
    assert [h.host for h in plan.hook_hosts(Hook("x", once=True), hosts[:1])] == ["a"]


def test_release_log_skips_truncated_and_foreign_lines():
    text = '{"event":"deploy","release":1,"status":"active","id":"x","at":"1"}\nnot json\n[1]\n{"event":"deploy","rel'
    events = releaselog.parse(text)
    assert [(e.release, e.status) for e in events] == [(1, "active")]


def test_merge_counts_an_event_written_to_many_hosts_once():
    one = ev(1, "active", at="1", id="same")
    assert releaselog.merge([[one], [one], [ev(2, "active", at="2")]]) == [one, ev(2, "active", at="2")]
