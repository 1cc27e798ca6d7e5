"""Pure builders of the shell scripts run on hosts. No I/O here: each returns a string.

Every value is quoted through :mod:`deployer.shell`. Exit codes that the executor
branches on are named constants, never matched from stderr text.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from .layout import (
    EXCLUDE_LIST,
    MANIFEST_NAME,
    TMP_LINK_PREFIX,
    Layout,
    current_target,
    shared_link_target,
)
from .shell import argv, env_prefix, quote, script

EXIT_LOCK_HELD = 75
EXIT_MISSING_SHARED = 76
EXIT_RELEASE_EXISTS = 77
EXIT_NOT_A_RELEASE = 78
EXIT_NO_MANIFEST = 79


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


def _new_release(layout: Layout, number: int) -> list[str]:
    """Create ``releases/N``; plain ``mkdir`` refuses to reuse an existing release."""
    release = quote(layout.release(number))
    return [
        "umask 022",
        argv("mkdir", "-p", layout.releases),
        f"mkdir {release} 2>/dev/null || {{ echo 'release directory exists already' >&2; exit {EXIT_RELEASE_EXISTS}; }}",
    ]


def _or_remove(layout: Layout, number: int, command: str, space: bool = False) -> str:
    """Run ``command``; if it fails, remove the half-built release and exit with its code,
    so no partial release is ever left behind. For steps that write (``space``), the error
    also says how much room is left, since a full disk is their likeliest failure."""
    release = quote(layout.release(number))
    note = ""
    if space:
        free = f"df -Pk {quote(layout.releases)} | awk 'NR==2 {{print $4}}'"
        note = f" printf 'free space under %s: %s KB\\n' {quote(layout.releases)} \"$({free})\" >&2;"
    return f"{command} || {{ rc=$?; rm -rf -- {release};{note} exit $rc; }}"


def unpack(layout: Layout, number: int, gzip: bool) -> str:
    """Create ``releases/N`` and unpack the whole artifact, arriving as a tar on stdin."""
    flags = "-xzf" if gzip else "-xf"
    release = quote(layout.release(number))
    return script(
        *_new_release(layout, number),
        _or_remove(
            layout, number, f"tar {flags} - -C {release} --no-same-owner --no-overwrite-dir", space=True
        ),
    )


def clone_release(layout: Layout, base: int, number: int, delta: bool) -> str:
    """Create ``releases/N`` from release ``base`` on the same host, sending no bytes for
    what did not change.

    Only the paths in the base release's manifest (the files of its artifact) are reused,
    as hard links; anything hooks or the app wrote into the base release stays behind. With
    ``delta``, a gzipped tar on stdin brings the changed files and a list of paths not to
    reuse. GNU tar unlinks before writing, so the base's files are never written through
    a shared link by the deploy itself.
    """
    release = layout.release(number)
    base_dir = layout.release(base)
    manifest = quote(str(PurePosixPath(base_dir, MANIFEST_NAME)))
    exclude = quote(str(PurePosixPath(release, EXCLUDE_LIST)))

    def listing(kinds: str) -> str:
        return f"gzip -dc {manifest} | awk '{kinds}' | cut -d' ' -f4- | grep -vxF -f {exclude}"

    steps = [
        f"gzip -t {manifest} 2>/dev/null || {{ echo 'release {base} has no usable manifest' >&2; exit {EXIT_NO_MANIFEST}; }}",
        *_new_release(layout, number),
    ]
    if delta:
        steps.append(
            _or_remove(layout, number, f"tar -xzf - -C {quote(release)} --no-same-owner", space=True)
        )
    else:
        steps.append(f": > {exclude}")
    dirs, others = listing('$1 == "d"'), listing('$1 != "d"')
    by_line = "xargs -d '\\n' -r"
    steps += [
        _or_remove(
            layout, number, f"cd {quote(base_dir)} && {dirs} | (cd {quote(release)} && {by_line} mkdir -p --)"
        ),
        _or_remove(
            layout,
            number,
            f"cd {quote(base_dir)} && {others} | {by_line} cp -al --parents -t {quote(release)} --",
            space=True,
        ),
        argv("rm", "-f", "--", str(PurePosixPath(release, EXCLUDE_LIST))),
    ]
    if not delta:  # the same artifact: the base's manifest is this release's manifest too
        steps.append(
            argv(
                "cp",
                "--",
                str(PurePosixPath(base_dir, MANIFEST_NAME)),
                str(PurePosixPath(release, MANIFEST_NAME)),
            )
        )
    return script(*steps)


def download_release(layout: Layout, number: int, url: str, sha256: str, gzip: bool) -> str:
    """Create ``releases/N`` from an artifact the host downloads itself (pull mode).

    The download is verified against the sha256 computed on the deploying machine before
    anything is unpacked; any failure removes the release."""
    release = layout.release(number)
    target = quote(str(PurePosixPath(release, ".deployer-download")))
    fetch = (
        f"if command -v curl >/dev/null 2>&1; then curl -fsS --retry 2 -o {target} {quote(url)}; "
        f"else wget -q -O {target} {quote(url)}; fi"
    )
    verify = (
        f"{{ printf '%s  %s\\n' {quote(sha256)} {target} | sha256sum -c --status "
        f"|| {{ echo 'downloaded artifact does not match sha256 {sha256[:12]}...' >&2; false; }}; }}"
    )
    flags = "-xzf" if gzip else "-xf"
    return script(
        *_new_release(layout, number),
        _or_remove(layout, number, fetch),
        _or_remove(layout, number, verify),
        _or_remove(
            layout,
            number,
            f"tar {flags} {target} -C {quote(release)} --no-same-owner --no-overwrite-dir",
            space=True,
        ),
        argv("rm", "-f", "--", str(PurePosixPath(release, ".deployer-download"))),
    )


def read_base64(path: str) -> str:
    """Print a (binary) file base64-encoded, or nothing if it is missing."""
    return f"base64 < {quote(path)} 2>/dev/null || true"


def link_shared(layout: Layout, number: int, dirs: Iterable[str], files: Iterable[str]) -> list[str]:
    """Commands that create shared dirs, check shared files, and link both into the release."""
    dirs, files = list(dirs), list(files)
    release = layout.release(number)
    steps = [argv("mkdir", "-p", layout.shared_path(d)) for d in dirs]
    for path in files:
        shared = quote(layout.shared_path(path))
        steps.append(
            f"[ -f {shared} ] || {{ echo {quote('missing shared file: shared/' + path)} >&2; exit {EXIT_MISSING_SHARED}; }}"
        )
    for path in dirs + files:
        inside = str(PurePosixPath(release, path))
        parent = str(PurePosixPath(inside).parent)
        steps.append(argv("rm", "-rf", "--", inside))
        steps.append(argv("mkdir", "-p", parent))
        steps.append(argv("ln", "-s", shared_link_target(path), inside))
    return steps


def finish_release(
    layout: Layout,
    number: int,
    shared_dirs: Iterable[str],
    shared_files: Iterable[str],
    metadata_json: str,
    with_files: bool,
) -> str:
    """Link shared paths, unpack per-release files (rendered templates, the manifest) from
    stdin, write the release metadata.

    Templates arrive as a small tar on stdin and are unpacked under ``umask 077`` so a
    file meant to be 0600 never exists with a wider mode, not even for a moment.
    """
    release = layout.release(number)
    steps = ["umask 022", *link_shared(layout, number, shared_dirs, shared_files)]
    if with_files:
        steps.append(f"(umask 077 && tar -xpf - -C {quote(release)} --no-same-owner --no-overwrite-dir)")
    # rm first: in a hard-linked release, writing in place would change the base release too.
    steps.append(argv("rm", "-f", "--", layout.metadata(number)))
    steps.append(f"printf '%s\\n' {quote(metadata_json)} > {quote(layout.metadata(number))}")
    return script(*steps)


def remove_releases(layout: Layout, numbers: Iterable[int]) -> str:
    """Delete release directories by number (never anything else)."""
    paths = [layout.release(n) for n in sorted(set(numbers))]
    return argv("rm", "-rf", "--", *paths) if paths else "true"


def remove_tmp_links(layout: Layout, names: Iterable[str]) -> str:
    """Delete leftover temporary ``current`` links from interrupted switches."""
    paths = [str(PurePosixPath(layout.deploy_to, n)) for n in names if n.startswith(TMP_LINK_PREFIX)]
    return argv("rm", "-f", "--", *paths) if paths else "true"


def switch(layout: Layout, number: int, token: str) -> str:
    """Point ``current`` at ``releases/N`` atomically.

    A uniquely named temporary link is renamed over ``current`` (rename(2) via
    ``mv -T``), so a reader sees either the old or the new target, never neither; the
    result is verified with ``readlink``.
    """
    check = f"[ -d {quote(layout.release(number))} ] || {{ echo {quote(f'release {number} is not on this host')} >&2; exit {EXIT_NOT_A_RELEASE}; }}"
    return point_current(layout, current_target(number), token, check)


def point_current(layout: Layout, target: str, token: str, check: str = "") -> str:
    """Atomically point ``current`` at any ``target`` (also one we did not create, when
    putting back a link someone made by hand)."""
    tmp = quote(layout.tmp_link(token))
    return script(
        check,
        f"ln -s {quote(target)} {tmp}",
        f"mv -T {tmp} {quote(layout.current)} || {{ rc=$?; rm -f {tmp}; exit $rc; }}",
        f'[ "$(readlink {quote(layout.current)})" = {quote(target)} ]',
    )


def unswitch(layout: Layout, number: int) -> str:
    """Remove ``current`` if it points at release N (undoing a first-ever switch)."""
    return (
        f'if [ "$(readlink {quote(layout.current)})" = {quote(current_target(number))} ]; '
        f"then rm -f {quote(layout.current)}; fi"
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
        f"  if [ $i -ge {int(retries)} ]; then echo {quote(f'unhealthy after {retries} attempt(s)')} >&2; exit 1; fi",
        f"  sleep {interval:g}",
        "done",
    )
