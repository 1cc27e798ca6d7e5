"""The stage's state on a host: the lock, the release log, and the read-only probe and check."""

from __future__ import annotations

from collections.abc import Iterable

from .. import untrusted
from ..facts import CHECK_MARKER, COMPLETE, LOG_MARKER, PARTIAL
from ..layout import RELEASE_METADATA, Layout
from ..shell import argv, quote, script
from .codes import EXIT_LOCK_HELD
from .maintenance import probe_lines as maintenance_lines


def acquire_lock(layout: Layout, info_json: str) -> str:
    """Take the stage lock with an atomic ``mkdir``; if held, print the holder and exit 75."""
    return script(
        "umask 022",
        argv("mkdir", "-p", layout.state),
        f"if mkdir {quote(layout.lock)} 2>/dev/null; then",
        f"  printf '%s\\n' {quote(info_json)} > {quote(layout.lock_info)}",
        "else",
        f"  head -c 4000 {quote(layout.lock_info)} 2>/dev/null || true",
        f"  exit {EXIT_LOCK_HELD}",
        "fi",
    )


def lock_and_probe(layout: Layout, info_json: str) -> str:
    """Take the lock and, in the same round trip, read the state (:func:`probe`)."""
    return acquire_lock(layout, info_json) + "\nset +e\n" + probe(layout)


def release_lock(layout: Layout, token: str) -> str:
    """Drop the lock only if it is still ours (its info holds our token)."""
    return (
        f"if grep -qF {quote(token)} {quote(layout.lock_info)} 2>/dev/null; "
        f"then rm -rf -- {quote(layout.lock)}; fi"
    )


def break_lock(layout: Layout) -> str:
    """Remove whatever lock is there (``unlock``), printing who held it."""
    return script(
        f"if [ -d {quote(layout.lock)} ]; then",
        f"  head -c 4000 {quote(layout.lock_info)} 2>/dev/null || echo '{{}}'",
        f"  rm -rf -- {quote(layout.lock)}",
        "fi",
    )


def append_log(layout: Layout, lines: Iterable[str]) -> str:
    """Append events to the release log; each ``printf`` is one small O_APPEND write."""
    log = quote(layout.log)
    steps = [
        "umask 022",
        argv("mkdir", "-p", layout.state),
        # A last line torn by a power loss must not swallow the next event: end it first.
        f'if [ -s {log} ] && [ -n "$(tail -c 1 {log})" ]; then printf "\\n" >> {log}; fi',
    ]
    steps += [f"printf '%s\\n' {quote(line)} >> {log}" for line in lines]
    return script(*steps)


def probe(layout: Layout) -> str:
    """Print the state of ``deploy_to`` as tagged lines (parsed by
    :func:`deployer.facts.parse_probe`), the release log last; changes nothing."""
    releases, current = quote(layout.releases), quote(layout.current)
    complete_if = f'[ -d "$r" ] && [ ! -L "$r" ] && [ -f "$r/"{quote(RELEASE_METADATA)} ]'
    return "\n".join(
        [
            untrusted.SHELL_SAFE_NAME,
            f'if [ -d {quote(layout.deploy_to)} ]; then echo "exists yes"; else echo "exists no"; fi',
            f'printf "current %s\\n" "$(safe_name "$(readlink {current} 2>/dev/null)")"',
            f'if [ -e {current} ]; then echo "current_ok yes"; fi',
            f"for r in {releases}/* {releases}/.[!.]*; do",
            '  [ -e "$r" ] || [ -L "$r" ] || continue',
            f"  if {complete_if}; then s={COMPLETE}; else s={PARTIAL}; fi",
            '  printf "release %s %s\\n" "$s" "$(safe_name "${r##*/}")"',
            "done",
            f"for t in {quote(layout.tmp_link(''))}*; do",
            '  [ -L "$t" ] && printf "tmplink %s\\n" "$(safe_name "${t##*/}")"',
            "done",
            f'if [ -d {quote(layout.lock)} ]; then printf "lock %s\\n" '
            f'"$(head -c 4000 {quote(layout.lock_info)} 2>/dev/null | tr -d "\\000-\\037")"; fi',
            *maintenance_lines(layout),
            f"for s in {quote(layout.snapshots)}/*.dump; do",
            '  [ -f "$s" ] && [ ! -L "$s" ] && printf "snapshot %s %s\\n" "$(safe_name "${s##*/}")" '
            '"$(stat -c %s "$s")"',
            "done",
            'if command -v zstd >/dev/null 2>&1; then echo "zstd yes"; fi',
            f"echo {quote(LOG_MARKER)}",
            f"cat {quote(layout.log)} 2>/dev/null || true",
        ]
    )


def check(layout: Layout, shared_files: Iterable[str]) -> str:
    """Read-only checks for ``invoke check`` (writable, free space, tools, shared files) as
    tagged lines, then :data:`CHECK_MARKER` and the probe (whose log must stay last)."""
    lines = [
        f"D={quote(layout.deploy_to)}",
        'P="$D"; while [ ! -e "$P" ]; do P=$(dirname "$P"); done',
        'if [ -w "$P" ] && [ -x "$P" ]; then echo "writable yes $P"; else echo "writable no $P"; fi',
        'printf "free_kb %s\\n" "$(df -Pk "$P" | awk \'NR==2 {print $4}\')"',
        "for t in tar mv readlink realpath mkdir ln gzip grep awk head; do",
        '  command -v $t >/dev/null 2>&1 || echo "missing_tool $t"',
        "done",
        'mv --help 2>&1 | grep -q -- "-T" || echo "missing_tool mv -T (GNU coreutils)"',
    ]
    for path in shared_files:
        lines.append(
            f"[ -f {quote(layout.shared_path(path))} ] || printf 'missing_shared %s\\n' {quote(path)}"
        )
    lines.append(f"echo {quote(CHECK_MARKER)}")
    return "\n".join(lines) + "\n" + probe(layout)
