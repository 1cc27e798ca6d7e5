"""The dashboard is one inert page: host text cannot add markup, script or requests to it."""

from __future__ import annotations

import re
from datetime import timedelta
from html.parser import HTMLParser

from deployer import dashboard, dora
from unit.test_dora import T0, deploy, rollback

HOSTILE_BY = '"><svg onload="alert(2)">mallory'
HOSTILE = '</td><script>alert(1)</script><img src="http://198.51.100.7/x.png" onerror="x()">'


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))


def page(reason: str = HOSTILE) -> str:
    events = [*deploy(1, 1, "aaa1"), *deploy(2, 2, "aaa2"), *rollback(3, 1, 2, reason, by=HOSTILE_BY)]
    report = dora.compute(events, T0, T0 + timedelta(days=2), {1: [T0.timestamp()], 2: []})
    report.update(stage="prod<b>", hosts={"web1<i>": 1, "web2": None})
    return dashboard.render("demo&co", report)


def test_hostile_reason_stage_and_host_names_stay_text():
    text = page()
    tags = Tags()
    tags.feed(text)
    names = {t for t, _ in tags.tags}
    assert "script" not in names and "img" not in names and "b" not in names and "i" not in names
    assert not any(k.startswith("on") for _, attrs in tags.tags for k in attrs)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&quot;&gt;&lt;svg onload=&quot;alert(2)&quot;&gt;mallory" in text
    assert sum(1 for t, _ in tags.tags if t == "svg") == 2  # the two charts, no injected one
    assert "demo&amp;co on prod&lt;b&gt;" in text


def test_the_page_asks_for_nothing_outside_itself():
    text = page()
    assert dashboard.CSP in text and "default-src 'none'" in text
    tags = Tags()
    tags.feed(page("plain"))
    for _, attrs in tags.tags:
        for name in ("src", "href", "action", "srcset"):
            assert name not in attrs
    assert not re.search(r"https?://", page("plain"))


def test_the_four_keys_incidents_and_hosts_are_on_the_page():
    text = page("errors after deploy")
    for key in ("deploys_per_day", "lead_time_seconds", "change_failure_rate", "time_to_restore_seconds"):
        assert f'id="key-{key}"' in text
    assert text.count('class="incident"') == 1 and "errors after deploy" in text
    assert text.count('class="host"') == 2
    assert '<svg id="chart-deploys"' in text and '<svg id="chart-lead"' in text
