"""The dashboard in a real browser: headless Chromium (Debian's ``chromium``, installed by
.ci/run) opens the file written by ``invoke metrics --html``, the test reads the DOM it
built and decodes its screenshot. Chromium gets no way out: every name resolves to
nothing and every request would go to a closed loopback port; the page's own
Content-Security-Policy forbids any request anyway.

``DEPLOYER_SCREENSHOT_TO=docs/dashboard.png`` keeps the screenshot (the README's picture).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from integration.test_metrics import HOSTILE, crafted, write_logs

WIDTH, HEIGHT = 1100, 1000
CHROMIUM = shutil.which("chromium")
OFFLINE = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--hide-scrollbars",
    f"--window-size={WIDTH},{HEIGHT}",
]


def chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed (.ci/run installs it)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    return subprocess.run(
        [CHROMIUM, *OFFLINE, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=True,
    )


def png_pixels(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the unfiltered rows of an 8-bit RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, header = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    assert depth == 8 and color in (2, 6) and interlace == 0, header
    bpp = 3 if color == 2 else 4
    raw, stride, rows, previous = zlib.decompress(idat), width * bpp, [], bytes(width * bpp)
    for y in range(height):
        kind, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b, c = previous[x], previous[x - bpp] if x >= bpp else 0
            if kind == 1:
                line[x] = (line[x] + a) & 255
            elif kind == 2:
                line[x] = (line[x] + b) & 255
            elif kind == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        previous = line
    return width, height, [b"".join(r[i : i + 3] for i in range(0, stride, bpp)) for r in rows]


class Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.classes: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        found = dict(attrs)
        self.tags.add(tag)
        if found.get("id"):
            self.ids.add(found["id"])
        self.classes += (found.get("class") or "").split()


def test_chromium_renders_the_four_keys_the_incidents_and_the_charts(local_project, tmp_path):
    p = local_project
    write_logs(p, crafted(p.root))
    page = tmp_path / "dashboard.html"
    result = p.invoke("metrics", "--stage=test", "--since=2026-11-01", "--until=2026-11-04", f"--html={page}")
    assert result.returncode == 0, result.stderr
    dom_text = chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    dom = Dom()
    dom.feed(dom_text)
    for key in ("deploys_per_day", "lead_time_seconds", "change_failure_rate", "time_to_restore_seconds"):
        assert f"key-{key}" in dom.ids
    assert {"chart-deploys", "chart-lead", "incidents", "hosts"} <= dom.ids
    assert dom.classes.count("incident") == 3
    assert "script" not in dom.tags and "img" not in dom.tags  # the hostile reason stayed text
    assert "&lt;img src=x onerror=alert(1)&gt;unhealthy" in dom_text and HOSTILE not in dom_text
    shot = tmp_path / "dashboard.png"
    chromium(tmp_path, f"--screenshot={shot}", page.as_uri())
    width, height, rows = png_pixels(shot.read_bytes())
    assert (width, height) == (WIDTH, HEIGHT)
    colors: dict[bytes, int] = {}
    for row in rows:
        for index in range(0, len(row), 3):
            colors[row[index : index + 3]] = colors.get(row[index : index + 3], 0) + 1
    background = max(colors.values())
    assert len(colors) > 20, "a blank (or nearly blank) screenshot"
    assert width * height - background > width * height * 0.03, "almost every pixel is the background"
    assert any(r > 180 and g < 80 and b < 80 for r, g, b in colors), "no failure (red) is drawn"
    keep = os.environ.get("DEPLOYER_SCREENSHOT_TO")
    if keep:
        shutil.copy(shot, keep)
