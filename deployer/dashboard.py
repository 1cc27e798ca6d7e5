"""The release dashboard: one self-contained HTML file with inline SVG charts.

It makes no request of any kind: no script, no external stylesheet, font or image, and a
Content-Security-Policy that forbids them, so opening it cannot leak anything. Every
string in it may come from a host's release log (``by``, ``reason``), so every one goes
through :func:`esc`; no host text is ever placed in an attribute unescaped or in a tag name.
"""

from __future__ import annotations

import html

from .recipes.metrics import describe_seconds, key_lines

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
COLORS = {"elite": "#1a7f37", "high": "#2f81f7", "medium": "#bf8700", "low": "#cf222e", None: "#6e7781"}
STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2328;background:#fff}
h1{font-size:20px;margin:0 0 4px} h2{font-size:16px;margin:24px 0 8px}
.keys{display:flex;gap:12px;flex-wrap:wrap}
.key{border:1px solid #d0d7de;border-radius:6px;padding:12px;min-width:200px;flex:1}
.key .name{color:#59636e}.key .value{font-size:16px;margin:6px 0}
.band{color:#fff;border-radius:10px;padding:1px 8px;font-size:12px}
table{border-collapse:collapse}td,th{border-bottom:1px solid #d0d7de;padding:4px 10px;text-align:left}
.muted{color:#59636e}
"""


def esc(value: object) -> str:
    """Text made inert for HTML (element content and quoted attributes alike)."""
    return html.escape("" if value is None else str(value), quote=True)


def render(application: str, report: dict) -> str:
    """The whole page for one stage's report (the ``metrics --json`` document)."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">',
        f"<title>{esc(application)} on {esc(report['stage'])}: releases</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{esc(application)} on {esc(report['stage'])}</h1>",
        f'<div class="muted">{esc(report["since"][:19])} to {esc(report["until"][:19])} UTC</div>',
        _keys(report),
        "<h2>Deploys per day</h2>",
        _deploys_chart(report["per_day"]),
        "<h2>Lead time for changes (median per release)</h2>",
        _lead_chart(report["lead_time_by_release"]),
        "<h2>Incidents</h2>",
        _incidents(report["incidents"]),
        "<h2>Current release per host</h2>",
        _hosts(report.get("hosts", {})),
        *(f'<p class="muted note">{esc(note)}</p>' for note in report["notes"]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _keys(report: dict) -> str:
    ids = ("deploys_per_day", "lead_time_seconds", "change_failure_rate", "time_to_restore_seconds")
    cards = []
    for key, (name, value, band) in zip(ids, key_lines(report), strict=True):
        cards.append(
            f'<div class="key" id="key-{key}" data-band="{esc(band or "none")}">'
            f'<div class="name">{esc(name)}</div><div class="value">{esc(value)}</div>'
            f'<span class="band" style="background:{COLORS.get(band, COLORS[None])}">'
            f"{esc(band or 'no data')}</span></div>"
        )
    return '<div class="keys">' + "".join(cards) + "</div>"


def _deploys_chart(days: list[dict], width: int = 720, height: int = 160) -> str:
    """One bar per day; the failed part of a day's bar is red."""
    if not days:
        return '<p class="muted">no days in the window</p>'
    top = max([d["deploys"] for d in days] + [1])
    step = width / len(days)
    bars = []
    for i, day in enumerate(days):
        x = i * step
        total_h = (height - 20) * day["deploys"] / top
        bad_h = (height - 20) * day["failures"] / top
        title = f"{day['day']}: {day['deploys']} deploy(s), {day['failures']} failed"
        bars.append(
            f"<g><title>{esc(title)}</title>"
            f'<rect x="{x + 1:.1f}" y="{height - total_h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{total_h:.1f}" fill="#2f81f7"/>'
            f'<rect class="failed" x="{x + 1:.1f}" y="{height - bad_h:.1f}" width="{max(step - 2, 1):.1f}" '
            f'height="{bad_h:.1f}" fill="#cf222e"/></g>'
        )
    return (
        f'<svg id="chart-deploys" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="deploys per day"><rect width="{width}" height="{height}" fill="#f6f8fa"/>'
        f'<text x="4" y="14" font-size="11" fill="#59636e">max {top}/day</text>' + "".join(bars) + "</svg>"
    )


def _lead_chart(rows: list[dict], width: int = 720, height: int = 160) -> str:
    """Each release's median lead time, in time order, joined by a line."""
    values = [r for r in rows if r["median"] is not None]
    if not values:
        return '<p class="muted">no lead time measured</p>'
    top = max(max(r["median"] for r in values), 1.0)
    step = width / max(len(values), 1)
    points = [
        (step * i + step / 2, height - 10 - (height - 30) * max(r["median"], 0) / top, r)
        for i, r in enumerate(values)
    ]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in points)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="#8250df"><title>'
        + esc("release {}: {}".format(r["release"], describe_seconds(r["median"])))
        + "</title></circle>"
        for x, y, r in points
    )
    return (
        f'<svg id="chart-lead" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="lead time"><rect width="{width}" height="{height}" fill="#f6f8fa"/>'
        f'<text x="4" y="14" font-size="11" fill="#59636e">max {esc(describe_seconds(top))}</text>'
        f'<polyline points="{line}" fill="none" stroke="#8250df" stroke-width="2"/>{dots}</svg>'
    )


def _incidents(rows: list[dict]) -> str:
    if not rows:
        return '<p class="muted" id="no-incidents">no incidents in this window</p>'
    body = "".join(
        f'<tr class="incident" data-release="{esc(i["release"])}"><td>{esc(i["release"])}</td>'
        f"<td>{esc(i['went_live'][:19].replace('T', ' '))}</td>"
        f"<td>{esc((i['restored_at'] or '-')[:19].replace('T', ' '))}</td>"
        f"<td>{esc(describe_seconds(i['seconds']))}</td><td>{esc(i['cause'])}</td>"
        f"<td>{esc(i.get('by') or '')}</td>"
        f"<td>{esc(i['reason'] or '')}</td></tr>"
        for i in rows
    )
    names = ("release", "went live", "restored", "took", "cause", "by", "reason")
    head = "<tr>" + "".join(f"<th>{n}</th>" for n in names) + "</tr>"
    return f'<table id="incidents">{head}{body}</table>'


def _hosts(hosts: dict) -> str:
    body = "".join(
        f'<tr class="host"><td>{esc(name)}</td><td>{esc("-" if n is None else n)}</td></tr>'
        for name, n in hosts.items()
    )
    return f'<table id="hosts"><tr><th>host</th><th>current</th></tr>{body}</table>'
