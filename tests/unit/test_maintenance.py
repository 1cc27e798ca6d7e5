"""Maintenance mode's pure parts: the scripts it sends and how a host's record is read."""

from __future__ import annotations

import subprocess

import pytest

from deployer.commands import maintenance_off, maintenance_on
from deployer.commands.maintenance import probe_lines
from deployer.layout import Layout
from deployer.recipes.maintenance import MaintenanceState, clean, describe, parse_record


def test_on_writes_record_then_page_to_temporary_names_then_renames():
    text = maintenance_on(Layout("/srv/hello"), '{"reason": "it\'s $(late)"}', "abc123")
    assert text.splitlines() == [
        "set -e",
        "umask 022",
        "mkdir -p /srv/hello/shared /srv/hello/.deployer",
        "if [ -e /srv/hello/shared/maintenance.html ]; then echo 'was on'; else echo 'was off'; fi",
        "printf '%s\\n' '{\"reason\": \"it'\"'\"'s $(late)\"}' > /srv/hello/.deployer/.maintenance.json.tmp-abc123",
        "mv -f /srv/hello/.deployer/.maintenance.json.tmp-abc123 /srv/hello/.deployer/maintenance.json",
        "cat > /srv/hello/shared/.maintenance.html.tmp-abc123 || { rc=$?; rm -f /srv/hello/shared/.maintenance.html.tmp-abc123; exit $rc; }",
        "mv -f /srv/hello/shared/.maintenance.html.tmp-abc123 /srv/hello/shared/maintenance.html",
    ]


def test_off_removes_the_page_before_the_record():
    assert maintenance_off(Layout("/srv/hello")).splitlines()[-2:] == [
        "rm -f -- /srv/hello/shared/maintenance.html",
        "rm -f -- /srv/hello/.deployer/maintenance.json",
    ]


def test_a_hostile_deploy_to_stays_one_path(tmp_path):
    """Every path is quoted: run for real under a name made to break out, nothing else runs."""
    layout = Layout(str(tmp_path / "a b'; touch PWNED #"))
    for text in (maintenance_on(layout, "{}", "t"), probe_lines(layout)[0], maintenance_off(layout)):
        subprocess.run(["sh", "-c", text], input=b"page", cwd=tmp_path, capture_output=True, check=True)
    assert not (tmp_path / "PWNED").exists()
    assert (tmp_path / "a b'; touch PWNED #" / ".deployer").is_dir()


def test_the_scripts_really_work_in_a_folder(tmp_path):
    layout = Layout(str(tmp_path / "app"))
    on = subprocess.run(["sh", "-c", maintenance_on(layout, '{"reason": "x"}', "t1")], input=b"<p>down</p>",
                        capture_output=True, check=True)  # fmt: skip
    assert on.stdout == b"was off\n"
    assert (tmp_path / "app/shared/maintenance.html").read_bytes() == b"<p>down</p>"
    probe = subprocess.run(["sh", "-c", probe_lines(layout)[0]], capture_output=True, text=True, check=True)
    assert probe.stdout == 'maintenance {"reason": "x"}\n'
    off = subprocess.run(["sh", "-c", maintenance_off(layout)], capture_output=True, check=True)
    assert off.stdout == b"was on\n" and not list((tmp_path / "app").rglob("maintenance*"))


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ('{"since": "2026-12-02T04:30:00+00:00", "reason": "db", "by": "ann@box"}',
         MaintenanceState("2026-12-02T04:30:00+00:00", "db", "ann@box")),
        ("", MaintenanceState()),  # the page without a record: still on
        ("not json", MaintenanceState()),
        ('{"since": "2026-12-02T04:30:00 and more"}', MaintenanceState()),
        ('["a"]', MaintenanceState()),
        ('{"since": "yesterday", "reason": 5, "by": ["x"]}', MaintenanceState()),
        ('{"reason": "a\\u001b[31mred\\u0007\\u202e\\nb"}', MaintenanceState(reason="a [31mred b")),
        ('{"reason": "' + "x" * 500 + '"}', MaintenanceState(reason="x" * 200)),
    ],
)  # fmt: skip
def test_a_hosts_record_is_type_checked_and_cleaned(raw, expected):
    assert parse_record(raw) == expected


def test_described_in_one_line():
    state = MaintenanceState("2026-12-02T04:30:00.123+00:00", "db upgrade", "ann@box")
    assert describe(state) == "maintenance on since 2026-12-02 04:30 UTC by ann@box (db upgrade)"
    assert describe(MaintenanceState()) == "maintenance on"
    assert clean("   ") is None and clean(3) is None
