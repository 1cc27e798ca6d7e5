"""Builders: exact scripts, quoting of hostile values, and the shell really parsing them."""

from __future__ import annotations

import subprocess

from hypothesis import given, settings
from hypothesis import strategies as st

from deployer import commands
from deployer.commands import probe
from deployer.facts import parse_probe
from deployer.layout import Layout, parse_current_target, shared_link_target
from deployer.shell import argv

L = Layout("/srv/my app")


def test_switch_is_rename_of_unique_temp_link_verified_by_readlink():
    script = commands.switch(L, 7, "abc123")
    assert "ln -s releases/7 '/srv/my app/current.tmp-abc123'" in script
    assert "mv -T '/srv/my app/current.tmp-abc123' '/srv/my app/current'" in script
    assert "[ \"$(readlink '/srv/my app/current')\" = releases/7 ]" in script
    assert "ln -sfn" not in script


def test_unpack_refuses_existing_release_and_removes_partial():
    script = commands.unpack(L, 3, gzip=True)
    assert "mkdir '/srv/my app/releases/3' 2>/dev/null ||" in script
    assert "tar -xzf - -C '/srv/my app/releases/3'" in script
    assert "rm -rf -- '/srv/my app/releases/3'" in script


def test_shared_links_are_relative():
    assert shared_link_target("log") == "../../shared/log"
    assert shared_link_target("config/secrets.yml") == "../../../shared/config/secrets.yml"


def test_current_target_parsing():
    assert parse_current_target("releases/12") == 12
    assert parse_current_target("/srv/app/releases/3/") == 3
    assert parse_current_target("/elsewhere") is None


def test_probe_parser():
    output = (
        "exists yes\ncurrent releases/2\ncurrent_ok yes\nrelease complete 1\nrelease complete 2\nrelease partial 3\n"
        'release partial backup\ntmplink current.tmp-x\nlock {"holder": "a"}\n--- deployer log ---\n'
        '{"event":"deploy","release":2,"status":"active"}\n{"trunc'
    )
    facts = parse_probe(output)
    assert facts.current == 2 and facts.current_ok
    assert facts.releases == {1: "complete", 2: "complete", 3: "partial"}
    assert facts.foreign == ["backup"] and facts.tmp_links == ["current.tmp-x"]
    assert facts.lock == {"holder": "a"} and [e.release for e in facts.log] == [2]


hostile = st.lists(
    st.sampled_from([*"a;$()`'\"\\ \n|&*?<>~#{}é", "$(touch /tmp/pwned)", "`id`", "'; rm -rf x; '"]),
    max_size=12,
).map("".join)


@settings(max_examples=200, deadline=None)
@given(hostile)
def test_quoted_values_reach_the_shell_unchanged(value):
    out = subprocess.run(["sh", "-c", argv("printf", "%s", value)], capture_output=True, text=True).stdout
    assert out == value


def test_probe_runs_on_a_missing_directory(tmp_path):
    out = subprocess.run(["sh", "-c", probe(Layout(str(tmp_path / "none")))], capture_output=True, text=True)
    facts = parse_probe(out.stdout)
    assert not facts.exists and facts.releases == {} and facts.current is None
