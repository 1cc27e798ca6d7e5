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
