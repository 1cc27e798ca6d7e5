"""Users' commands on hosts: hooks, health checks and the database snapshot."""

from __future__ import annotations

from ..layout import Layout
from ..shell import argv, env_prefix, quote, script
from .codes import EXIT_EMPTY_SNAPSHOT


def run_hook(
    directory: str, command: str, env: dict[str, str], sudo: bool = False, sudo_user: str | None = None
) -> str:
    """Run a user's hook command in ``directory`` with the deploy's environment.

    With ``sudo`` the environment is passed through ``env`` (sudo would reset it) and
    ``-n`` makes a missing sudo rule fail at once instead of waiting for a password."""
    if sudo:
        who = ["-u", sudo_user] if sudo_user else []
        pairs = [f"{name}={value}" for name, value in env.items()]
        return script(
            argv("cd", directory), argv("exec", "sudo", "-n", *who, "env", *pairs, "sh", "-c", command)
        )
    return script(argv("cd", directory), env_prefix(env), argv("exec", "sh", "-c", command))


def healthcheck(
    directory: str, command: str | None, url: str | None, retries: int, interval: float, timeout: float
) -> str:
    """Retry a health probe on the host until it passes or the attempts run out."""
    probe = (
        command
        if command is not None
        else argv("curl", "-fsS", "-o", "/dev/null", "--max-time", f"{timeout:g}", url)
    )
    return script(
        argv("cd", directory),
        "i=0",
        "while :; do",
        f"  if timeout {timeout:g} sh -c {quote(probe)}; then exit 0; fi",
        "  i=$((i+1))",
        f"  if [ $i -ge {int(retries)} ]; then",
        f"    echo {quote(f'unhealthy after {retries} attempt(s)')} >&2; exit 1",
        "  fi",
        f"  sleep {interval:g}",
        "done",
    )


def watch_check(directory: str, command: str | None, url: str | None, timeout: float) -> str:
    """One check of the watch window: the probe once, its output kept (it is the reason
    recorded if the release is switched back), a hung probe stopped after ``timeout``."""
    probe = (
        command
        if command is not None
        else argv("curl", "-fsS", "-o", "/dev/null", "--max-time", f"{timeout:g}", url)
    )
    return script(argv("cd", directory), f"exec timeout {timeout:g} sh -c {quote(probe)} 2>&1")


def snapshot(layout: Layout, path: str, directory: str, command: str, env: dict[str, str]) -> str:
    """Run the snapshot command into ``path``, a fresh file only its owner can read (in the
    0700 snapshots folder, umask 077, then 0600); refuse an empty or missing one, print its size."""
    folder = layout.snapshots
    return script(
        "umask 077",
        argv("mkdir", "-p", "--", folder),
        argv("chmod", "0700", "--", folder),
        argv("rm", "-f", "--", path),
        "(\n" + run_hook(directory, command, env) + "\n)",
        f"[ -f {quote(path)} ] && [ ! -L {quote(path)} ] && [ -s {quote(path)} ] || "
        f"{{ echo snapshot_empty; exit {EXIT_EMPTY_SNAPSHOT}; }}",
        argv("chmod", "0600", "--", path),
        f'printf "snapshot_size %s\\n" "$(stat -c %s {quote(path)})"',
    )
