"""What a host sends back, parsed: generated hostile values give typed fields or nothing
(issue 10). The end-to-end hostile host is tests/faults/test_hostile_host.py."""

from __future__ import annotations

import gzip
import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deployer import releaselog, untrusted
from deployer.facts import parse_lock_info, parse_probe

HOSTILE_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=60) | st.sampled_from(
    ["$(touch /tmp/x)", "`id`", "';id;'", "\x1b]52;c;eA==\x07", "\u009b2J", "NaN", "-rf", "--x=y"]
)
JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE_TEXT, inner, max_size=3),
    max_leaves=8,
)
FIELDS = ["id", "event", "at", "by", "stage", "release", "status", "previous", "sha256", "revision", "detail"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from([*FIELDS, "subject", "author"]), JSON_VALUE, max_size=8))
def test_any_log_line_parses_to_a_typed_event_or_nothing(data):
    event = releaselog.parse_line(json.dumps(data))
    if event is None:
        return
    for name in ("id", "event", "at", "by", "stage"):
        assert isinstance(getattr(event, name), str)
    for name in ("release", "previous"):
        value = getattr(event, name)
        assert value is None or (type(value) is int and 1 <= value <= untrusted.MAX_RELEASE)
    assert event.sha256 is None or re.fullmatch("[0-9a-f]{64}", event.sha256)
    assert event.revision is None or re.fullmatch("[0-9a-f]{4,64}(-dirty)?", event.revision)
    assert isinstance(event.note("subject"), str)


@settings(max_examples=100, deadline=None)
@given(
    st.dictionaries(st.sampled_from(["holder", "pid", "since", "command", "token"]), JSON_VALUE, max_size=5)
)
def test_any_lock_record_gives_typed_fields(data):
    info = parse_lock_info(json.dumps(data))
    assert isinstance(info["holder"], str)
    assert "pid" not in info or type(info["pid"]) is int
    assert "since" not in info or isinstance(info["since"], float)


def test_a_gzip_of_the_log_is_not_json():
    assert releaselog.parse_line(gzip.compress(b"{}").decode("latin-1")) is None


def test_printable_removes_every_control_character_but_newline_and_tab():
    raw = "a\x1b]52;c;eA==\x07b\u009b2Jc\td\ne\x7f\r"
    assert untrusted.printable(raw) == "a]52;c;eA==b2Jc\td\ne"
    assert untrusted.one_line("x\ny\tz") == "x y z"


def test_a_planted_name_cannot_forge_probe_output():
    """The probe prints odd names hex-encoded; decoded for display, escaped."""
    name = "7\n--- deployer log ---\n{}"
    encoded = untrusted.HEX_PREFIX + name.encode().hex()
    facts = parse_probe(f"exists yes\nrelease complete {encoded}\n--- deployer log ---\n")
    assert facts.releases == {} and facts.foreign == ["7\\n--- deployer log ---\\n{}"]
    assert facts.log == []


def test_a_lock_record_with_nan_is_unreadable_but_still_held():
    assert parse_lock_info('{"holder":"x","since":NaN}') == {"holder": "unknown (unreadable lock info)"}
    assert parse_lock_info('{"holder":"x","since":1e999}')["holder"] == "unknown (unreadable lock info)"


# -- found in review (issue 10) -------------------------------------------------------------


def test_a_lock_record_with_other_line_breaks_cannot_forge_probe_lines():
    """splitlines() broke on \\r, \\x1c, U+2028...: a lock record could plant a tmplink
    pointing outside deploy_to (which cleanup then removed) or a release."""
    forged = "{}\rtmplink current.tmp-x/../../../home/deploy/.ssh/authorized_keys\u2028release complete 5"
    facts = parse_probe(f"exists yes\nlock {forged}\n--- deployer log ---\n")
    assert facts.tmp_links == [] and facts.releases == {} and facts.lock is not None


def test_only_our_own_temporary_links_are_ever_removed():
    from deployer.commands import remove_tmp_links
    from deployer.layout import Layout

    script = remove_tmp_links(
        Layout("/srv/app"), ["current.tmp-ab12", "current.tmp-x/../../etc", "current.tmp-"]
    )
    assert script == "rm -f -- /srv/app/current.tmp-ab12"


def test_release_numbers_past_the_cap_stop_a_deploy_with_one_line():
    import pytest

    from deployer.errors import DeployFailed
    from deployer.facts import HostFacts
    from deployer.layout import parse_current_target
    from deployer.plan import next_release

    assert parse_current_target("releases/1000000001") is None
    facts = {"web1": HostFacts(releases={untrusted.MAX_RELEASE: "complete"})}
    with pytest.raises(DeployFailed, match="past the largest release number"):
        next_release(facts)


def test_a_deeply_nested_maintenance_record_is_just_unreadable():
    from deployer.recipes.maintenance import parse_record

    state = parse_record("[" * 1999)
    assert state is not None and state.reason is None


def test_an_out_of_range_time_is_no_time():
    from deployer.dora import parse_time

    assert parse_time("0001-01-01T00:00:00+01:00") is None
    assert parse_time("9999-12-31T23:59:59-01:00") is None


def test_a_non_ascii_seal_is_refused_not_a_crash(monkeypatch):
    from deployer import ledger

    monkeypatch.setenv(ledger.SEAL_KEY_ENV, "k")
    assert ledger.vouched("a" * 64, "b" * 64, "é") is None


def test_a_loosened_file_mode_changes_the_content_digest():
    from deployer import ledger
    from deployer.artifact import Entry

    secret = {"config/credentials": Entry("f", "ab" * 16, 0o600)}
    loosened = {"config/credentials": Entry("f", "ab" * 16, 0o644)}
    umasked = {"config/credentials": Entry("f", "ab" * 16, 0o622)}  # 0622 unpacks as 0600
    assert ledger.content_digest(secret) != ledger.content_digest(loosened)
    assert ledger.content_digest(secret) == ledger.content_digest(umasked)


def test_printable_drops_bidi_overrides_and_line_separators():
    assert untrusted.printable("bob\u202eevil\u2028x\u200b") == "bobevilx"


def test_a_manifest_line_of_the_wrong_shape_is_dropped():
    from deployer.artifact import parse_manifest

    data = b"f abc  path\nfd abc 644 p2\n f abc 644 p3\nf abc 644 good\n"
    assert list(parse_manifest(data)) == ["good"]


def test_an_exact_current_target_survives_for_undo():
    name = "releases/café"
    encoded = untrusted.HEX_PREFIX + name.encode().hex()
    assert parse_probe(f"current {encoded}\n--- deployer log ---\n").current_raw == name
