"""Scheduled cleanup on a host: a systemd user timer, or a cron entry where there is none."""

from __future__ import annotations

from ..layout import Layout
from ..shell import argv, quote, script, tar_into

SCHEDULE_FILES = ("cleanup.sh", "cleanup.service", "cleanup.timer", "cron")
USER_UNITS = "$HOME/.config/systemd/user"  # expanded by the host's shell
DETECT_SCHEDULER = (
    "if command -v systemctl >/dev/null && systemctl --user show-environment >/dev/null 2>&1; "
    "then echo systemd; else echo cron; fi"
)
NO_CRONTAB = "echo 'no crontab on this host (install cron, or use systemd)' >&2; exit 1"


def _without_marker(marker: str) -> str:
    """Our crontab without our line (every other line kept). Our line is the one that ENDS
    with `` <marker>``: a substring match would also take /srv/review/pr-10's line for
    /srv/review/pr-1's. The marker reaches awk through the environment (``-v`` would
    interpret backslashes in it)."""
    keep = (
        'n = length(ENVIRON["M"]); '
        'if (length($0) < n || substr($0, length($0) - n + 1) != ENVIRON["M"]) print'
    )
    return f"crontab -l 2>/dev/null | M={quote(' ' + marker)} awk {quote('{ ' + keep + ' }')} || true"


def install_schedule(layout: Layout, unit: str, marker: str, via: str) -> str:
    """Unpack the rendered files (a tar on stdin) into .deployer/ and activate them."""
    steps = [
        "umask 022",
        argv("mkdir", "-p", layout.state),
        tar_into(layout.state, "-xpf - --no-same-owner"),
    ]
    if via == "systemd":
        steps += [
            f'mkdir -p "{USER_UNITS}"',
            f'cp {quote(layout.state_file("cleanup.service"))} "{USER_UNITS}"/{quote(unit + ".service")}',
            f'cp {quote(layout.state_file("cleanup.timer"))} "{USER_UNITS}"/{quote(unit + ".timer")}',
            "systemctl --user daemon-reload",
            argv("systemctl", "--user", "enable", "--now", unit + ".timer"),
        ]
    else:
        steps += [
            f"command -v crontab >/dev/null || {{ {NO_CRONTAB}; }}",
            f"{{ {_without_marker(marker)}; cat {quote(layout.state_file('cron'))}; }} | crontab -",
        ]
    return script(*steps)


def remove_schedule(layout: Layout, unit: str, marker: str) -> str:
    """Remove our crontab line and our timer, wherever either is, and the rendered files."""
    timer, service = quote(unit + ".timer"), quote(unit + ".service")
    return script(
        "if command -v crontab >/dev/null; then",
        f"  {{ {_without_marker(marker)}; }} | crontab -",
        "fi",
        f'if [ -f "{USER_UNITS}"/{timer} ]; then',
        f"  systemctl --user disable --now {timer} 2>/dev/null || true",
        f'  rm -f "{USER_UNITS}"/{timer} "{USER_UNITS}"/{service}',
        "  systemctl --user daemon-reload 2>/dev/null || true",
        "fi",
        argv("rm", "-f", "--", *(layout.state_file(f) for f in SCHEDULE_FILES)),
    )
