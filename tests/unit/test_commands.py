"""Builders: exact scripts, quoting of hostile values, and the shell really parsing them."""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deployer import commands
from deployer.commands import probe
from deployer.facts import parse_probe
from deployer.layout import Layout, parse_current_target, shared_link_target
from deployer.shell import argv, quote

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
    assert "(cd -- '/srv/my app/releases/3' && tar -xzf - " in script
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


# -- issue 10: hostile values ---------------------------------------------------------------


def test_unscheduling_pr_1_keeps_pr_10s_cron_line(tmp_path):
    from deployer.commands.schedule import _without_marker

    crontab = tmp_path / "crontab"
    crontab.write_text(
        "1 * * * * a # deployer-cleanup:/srv/review/pr-1\n"
        "2 * * * * b # deployer-cleanup:/srv/review/pr-10\n"
        "3 * * * * mine, untouched\n"
    )
    script = _without_marker("# deployer-cleanup:/srv/review/pr-1").replace(
        "crontab -l 2>/dev/null", f"cat {crontab}"
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [
        "2 * * * * b # deployer-cleanup:/srv/review/pr-10",
        "3 * * * * mine, untouched",
    ]


def test_download_release_refuses_a_digest_that_is_not_hex():
    from deployer.commands import download_release

    with pytest.raises(ValueError):
        download_release(Layout("/srv/app"), 2, "http://h/a.tar", "';touch /tmp/x;'a", True)
    script = download_release(Layout("/srv/app"), 2, "http://h/a.tar", "ab" * 32, True)
    assert "'downloaded artifact does not match sha256 abababababab...'" in script


@pytest.mark.parametrize("ref", ["--output=/tmp/x", "-p", " "])
def test_a_ref_that_git_would_read_as_an_option_is_refused(tmp_path, ref):
    from deployer import git
    from deployer.errors import ArtifactError

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(ArtifactError, match="--ref: .* is not a revision"):
        git.resolve(tmp_path, ref)
    assert not (tmp_path.parent / "x").exists()


def test_a_probe_prints_odd_names_hex_encoded(tmp_path):
    """The probe's shell function, run for real on names that could forge its output."""
    from deployer import untrusted

    for name in ["7\n--- deployer log ---", "$(id)", "\x1b[2J", "3 ", "plain-1.2_x", "-rf"]:
        script = f"{untrusted.SHELL_SAFE_NAME}\nsafe_name {quote(name)}"
        out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True).stdout
        if name in ("plain-1.2_x", "-rf"):  # cannot break a tagged line; never reaches a shell
            assert out == name
        else:
            assert out.startswith("hex:") and "\n" not in out
            assert untrusted.decode_name(out) == name.encode("unicode_escape").decode("ascii")


def test_watch_check_runs_the_probe_once_keeping_its_output_and_bounded_in_time():
    from deployer import commands

    script = commands.watch_check("/srv/app/releases/3", "./bin/ok 'x'", None, 10)
    assert script.splitlines() == [
        "set -e",
        "cd /srv/app/releases/3",
        "exec timeout 10 sh -c './bin/ok '\"'\"'x'\"'\"'' 2>&1",
    ]
    by_url = commands.watch_check("/srv/app/releases/3", None, "http://127.0.0.1:8000/up", 2.5)
    assert "curl -fsS -o /dev/null --max-time 2.5 http://127.0.0.1:8000/up" in by_url


def test_no_tar_is_given_a_directory_with_c_because_gnu_tar_unquotes_it():
    """``tar -C 'a\\1b'`` opens ``a<byte 1>b``: every unpack runs tar inside the directory."""
    from deployer.commands import release, schedule

    layout = Layout("/srv/a\\1b")
    scripts = [
        release.unpack(layout, 3, gzip=True),
        release.unpack(layout, 3, gzip=True, zstd=True),
        release.clone_release(layout, 2, 3, delta=True),
        release.download_release(layout, 3, "https://example.invalid/a.tgz", "0" * 64, gzip=True),
        release.finish_release(layout, 3, [], [], "{}", with_files=True),
        schedule.install_schedule(layout, "unit", "marker", "cron"),
    ]
    for text in scripts:
        assert " -C " not in text.replace("-C -", ""), text
        assert "tar " in text
