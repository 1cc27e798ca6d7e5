"""What reaches the terminal (issue 10): secrets masked before encoding, no control characters."""

from __future__ import annotations

import io
import json

import pytest

from deployer.output import Reporter, Secrets

AWKWARD = ['pa"ss', "back\\slash", "two\nlines", "ünïcødé-€", "tab\there"]


@pytest.mark.parametrize("secret", AWKWARD)
def test_json_output_masks_secrets_that_json_would_escape(secret):
    stream = io.StringIO()
    reporter = Reporter(stream=stream, json_mode=True)
    reporter.secrets.values.add(secret)
    reporter.document({"error": f"hook printed DB_PASSWORD={secret}", secret: [secret]})
    text = stream.getvalue()
    data = json.loads(text)
    assert data == {"error": "hook printed DB_PASSWORD=******", "******": ["******"]}
    assert json.dumps(secret)[1:-1] not in text and secret not in text


def test_a_signed_url_has_its_secret_parts_masked():
    secrets = Secrets()
    secrets.add_url(
        "https://user:hunter2@cdn.example/app/abc.tar.gz?X-Amz-Signature=deadbeef&X-Amz-Date=1#frag"
    )
    masked = secrets.mask(
        "curl https://user:hunter2@cdn.example/app/abc.tar.gz?X-Amz-Signature=deadbeef&X-Amz-Date=1"
    )
    assert "hunter2" not in masked and "deadbeef" not in masked and "cdn.example/app/abc.tar.gz" in masked


def test_a_webhook_url_is_masked_whole():
    secrets = Secrets()
    secrets.add_url("https://hooks.slack.com/services/T0/B0/XYZ", whole=True)
    assert secrets.mask("posting to https://hooks.slack.com/services/T0/B0/XYZ") == "posting to ******"
    assert "XYZ" not in secrets.mask("path /services/T0/B0/XYZ")


def test_printed_lines_and_tables_carry_no_control_characters():
    stream = io.StringIO()
    reporter = Reporter(stream=stream)
    reporter.line("by \x1b]52;c;cHduZWQ=\x07mallory \u009b2J")
    reporter.table(["by", "subject"], [["\x1b[31mred", "two\nlines\there"]])
    text = stream.getvalue()
    assert not any((ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F for c in text), repr(text)
    assert "two lines here" in text
