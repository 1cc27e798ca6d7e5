"""Maintenance mode on a host: the page nginx answers 503 with, and its record.

``<deploy_to>/shared/maintenance.html`` is what the web server tests for (its existence
is the switch); ``.deployer/maintenance.json`` records who turned it on, when and why,
for ``releases`` and ``check``. Both are written to a temporary name and renamed, so the
web server never sees half a page. Neither script touches the deploy lock.
"""

from __future__ import annotations

from ..layout import Layout
from ..shell import argv, quote, script

PAGE = "maintenance.html"
RECORD = "maintenance.json"


def page_path(layout: Layout) -> str:
    return layout.shared_path(PAGE)


def record_path(layout: Layout) -> str:
    return layout.state_file(RECORD)


def maintenance_on(layout: Layout, record_json: str, token: str) -> str:
    """Write the page (read from stdin) and its record atomically; prints ``was on`` or
    ``was off`` (whether a page was already there)."""
    page, record = quote(page_path(layout)), quote(record_path(layout))
    page_tmp = quote(layout.shared_path(f".{PAGE}.tmp-{token}"))
    record_tmp = quote(layout.state_file(f".{RECORD}.tmp-{token}"))
    return script(
        "umask 022",
        argv("mkdir", "-p", layout.shared, layout.state),
        f"if [ -e {page} ]; then echo 'was on'; else echo 'was off'; fi",
        f"printf '%s\\n' {quote(record_json)} > {record_tmp}",
        f"mv -f {record_tmp} {record}",
        f"cat > {page_tmp} || {{ rc=$?; rm -f {page_tmp}; exit $rc; }}",
        f"mv -f {page_tmp} {page}",
    )


def maintenance_off(layout: Layout) -> str:
    """Remove the page first (the site is back at once), then its record; prints ``was on``
    or ``was off``."""
    page, record = quote(page_path(layout)), quote(record_path(layout))
    return script(
        f"if [ -e {page} ]; then echo 'was on'; else echo 'was off'; fi",
        f"rm -f -- {page}",
        f"rm -f -- {record}",
    )


def probe_lines(layout: Layout) -> list[str]:
    """Lines for the read-only probe: ``maintenance <record>`` while the page exists (the
    record is the host's own data: it is parsed as untrusted, see recipes/maintenance)."""
    return [
        f'if [ -e {quote(page_path(layout))} ]; then printf "maintenance %s\\n" '
        f'"$(head -c 2000 {quote(record_path(layout))} 2>/dev/null | tr -d "\\000-\\037")"; fi'
    ]
