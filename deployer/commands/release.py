"""Release directories: make one (unpack, clone, download), fill it, read it, remove it."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import PurePosixPath

from ..layout import EXCLUDE_LIST, MANIFEST_MAX, MANIFEST_NAME, Layout, shared_link_target
from ..shell import argv, or_fail, quote, script, tar_into
from ..untrusted import is_sha256
from .codes import EXIT_MISSING_SHARED, EXIT_NO_MANIFEST, EXIT_RELEASE_EXISTS, EXIT_UNSAFE_PATH
from .current import remove_tmp_links

# Unpacking an artifact: never the archive's owners, and never its modes as such either:
# as root, tar would otherwise keep setuid/setgid bits and world-write from the archive.
UNTAR = "--no-same-owner --no-same-permissions --no-overwrite-dir"

# Paths read back from a host's manifest pass only when they are plain relative paths:
# not absolute, no '..' component, not starting with '-' (never an option to a command).
SAFE_PATHS = r"grep -Ev '^$|^/|^-|(^|/)\.\.(/|$)'"


def _manifest_lines(manifest: str) -> str:
    """A stored manifest, uncompressed, cut off at MANIFEST_MAX bytes (a gzip bomb stops there)."""
    return f"gzip -dc -- {manifest} 2>/dev/null | head -c {MANIFEST_MAX}"


def _new_release(layout: Layout, number: int) -> list[str]:
    """Create ``releases/N``; plain ``mkdir`` refuses to reuse an existing release."""
    release = quote(layout.release(number))
    return [
        "umask 022",
        argv("mkdir", "-p", layout.releases),
        or_fail(f"mkdir {release} 2>/dev/null", "release directory exists already", EXIT_RELEASE_EXISTS),
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


def unpack(layout: Layout, number: int, gzip: bool, zstd: bool = False) -> str:
    """Create ``releases/N`` and unpack the whole artifact, arriving as a tar on stdin
    (gzipped, or with ``zstd`` its zstd copy). tar runs ``zstd -d`` itself and fails when
    it does (a frame whose checksum does not match); ``--use-compress-program`` rather than
    ``--zstd``, which GNU tar only knows since 1.31."""
    flags = "--use-compress-program=zstd -xf" if zstd else "-xzf" if gzip else "-xf"
    return script(
        *_new_release(layout, number),
        _or_remove(layout, number, tar_into(layout.release(number), f"{flags} - {UNTAR}"), space=True),
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
        paths = f"awk '{kinds}' | cut -d' ' -f4- | {SAFE_PATHS}"
        return f"{_manifest_lines(manifest)} | {paths} | grep -vxF -f {exclude}"

    size = f'[ "$({_manifest_lines(manifest)} | wc -c)" -lt {MANIFEST_MAX} ]'
    usable = f"{size} && gzip -t -- {manifest} 2>/dev/null"
    steps = [
        or_fail(usable, f"release {base} has no usable manifest", EXIT_NO_MANIFEST),
        *_new_release(layout, number),
    ]
    if delta:
        steps.append(_or_remove(layout, number, tar_into(release, f"-xzf - {UNTAR}"), space=True))
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
    if not is_sha256(sha256):  # every digest is checked where it is read; this is the last line
        raise ValueError(f"not a sha256: {sha256!r}")
    release = layout.release(number)
    target = quote(str(PurePosixPath(release, ".deployer-download")))
    fetch = (
        f"if command -v curl >/dev/null 2>&1; then curl -fsS --retry 2 -o {target} {quote(url)}; "
        f"else wget -q -O {target} {quote(url)}; fi"
    )
    mismatch = f"downloaded artifact does not match sha256 {sha256[:12]}..."
    verify = (
        f"{{ printf '%s  %s\\n' {quote(sha256)} {target} | sha256sum -c --status "
        f"|| {{ echo {quote(mismatch)} >&2; false; }}; }}"
    )
    flags = "-xzf" if gzip else "-xf"
    return script(
        *_new_release(layout, number),
        _or_remove(layout, number, fetch),
        _or_remove(layout, number, verify),
        _or_remove(
            layout,
            number,
            tar_into(release, f"{flags} {target} {UNTAR}"),
            space=True,
        ),
        argv("rm", "-f", "--", str(PurePosixPath(release, ".deployer-download"))),
    )


def read_base64(path: str, limit: int = 2 * MANIFEST_MAX) -> str:
    """Print a (binary) file base64-encoded, cut off at ``limit`` characters, or nothing if
    it is missing."""
    return f"base64 < {quote(path)} 2>/dev/null | head -c {int(limit)} || true"


def _real_roots(layout: Layout, number: int) -> str:
    """Set ``$release_real`` and ``$shared_real``: where the release and shared/ really are."""
    release, shared = quote(layout.release(number)), quote(layout.shared)
    return f"release_real=$(realpath -m -- {release}); shared_real=$(realpath -m -- {shared})"


def inside_release(layout: Layout, number: int, path: str, what: str, or_shared: bool = False) -> str:
    """Refuse (exit EXIT_UNSAFE_PATH) unless the folder ``path`` is written into really lies
    inside the release (or, with ``or_shared``, inside shared/): a symlink in the release,
    planted on the host or reused from a base release, must never turn a ``rm -rf``, ``ln``
    or unpack into one outside. Needs :func:`_real_roots` first."""
    parent = quote(str(PurePosixPath(layout.release(number), path).parent))
    allowed = '"$release_real"/*' + ('|"$shared_real"/*' if or_shared else "")
    test = f'case "$(realpath -m -- {parent})/" in {allowed}) true ;; *) false ;; esac'
    message = f"{what} {path} resolves outside release {number} (through a symlink); refusing to write it"
    return or_fail(test, message, EXIT_UNSAFE_PATH)


def link_shared(layout: Layout, number: int, dirs: Iterable[str], files: Iterable[str]) -> list[str]:
    """Commands that create shared dirs, check shared files, and link both into the release.
    Each path's real location is checked just before it is removed and linked, so a link
    made for one path (``config``) can never carry the next (``config/uploads``) outside."""
    dirs, files = list(dirs), list(files)
    release = layout.release(number)
    steps = [argv("mkdir", "-p", layout.shared_path(d)) for d in dirs]
    for path in files:
        shared = quote(layout.shared_path(path))
        steps.append(or_fail(f"[ -f {shared} ]", f"missing shared file: shared/{path}", EXIT_MISSING_SHARED))
    steps.append(_real_roots(layout, number))
    for path in dirs + files:
        inside = str(PurePosixPath(release, path))
        parent = str(PurePosixPath(inside).parent)
        steps.append(inside_release(layout, number, path, "shared path"))
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
    file_paths: Iterable[str] = (),
    files_from: str = "-",
) -> str:
    """Link shared paths, unpack per-release files (rendered templates, the manifest) from
    stdin (or the tar file ``files_from``), write the release metadata.

    Templates arrive as a small tar on stdin and are unpacked under ``umask 077`` so a
    file meant to be 0600 never exists with a wider mode, not even for a moment.
    """
    release = layout.release(number)
    steps = ["umask 022", *link_shared(layout, number, shared_dirs, shared_files)]
    # A template may be written into a shared dir linked just above, never elsewhere.
    steps += [inside_release(layout, number, path, "file", or_shared=True) for path in file_paths]
    if with_files:
        source = "-" if files_from == "-" else quote(files_from)
        steps.append(
            f"(umask 077 && {tar_into(release, f'-xpf {source} --no-same-owner --no-overwrite-dir')})"
        )
    # rm first: in a hard-linked release, writing in place would change the base release too.
    steps.append(argv("rm", "-f", "--", layout.metadata(number)))
    steps.append(f"printf '%s\\n' {quote(metadata_json)} > {quote(layout.metadata(number))}")
    return script(*steps)


def remove_deploy_to(layout: Layout) -> str:
    """Delete a whole deployment directory (``destroy`` of a review app instance)."""
    return argv("rm", "-rf", "--", layout.deploy_to)


def cleanup(
    layout: Layout, numbers: Iterable[int], tmp_links: Iterable[str], snapshots: Iterable[int] = ()
) -> str:
    """Remove old releases, the snapshots no rollback can use any more, and leftover
    temporary ``current`` links."""
    return (
        f"{remove_releases(layout, numbers)} && {remove_snapshots(layout, snapshots)} && "
        f"{remove_tmp_links(layout, tmp_links)}"
    )


def remove_snapshots(layout: Layout, numbers: Iterable[int]) -> str:
    """Delete database snapshots by release number (never anything else)."""
    paths = [layout.snapshot(n) for n in sorted(set(numbers))]
    return argv("rm", "-f", "--", *paths) if paths else "true"


def remove_releases(layout: Layout, numbers: Iterable[int]) -> str:
    """Delete release directories by number (never anything else)."""
    paths = [layout.release(n) for n in sorted(set(numbers))]
    return argv("rm", "-rf", "--", *paths) if paths else "true"


def pack_release(layout: Layout, number: int) -> str:
    """Tar (to stdout) exactly the paths of a release's manifest, in manifest order: the
    artifact's files, never what templates, hooks or shared links added (for promote).
    Only plain relative paths pass, and tar reads each name verbatim: a hand-edited
    manifest can neither reach outside the release nor pass tar an option."""
    return (
        f"cd {quote(layout.release(number))} && {_manifest_lines(MANIFEST_NAME)} | cut -d' ' -f4- "
        f"| {SAFE_PATHS} | tr '\\n' '\\0' "
        "| tar -cf - --no-recursion --null --verbatim-files-from --no-unquote -T -"
    )


def read_manifest(layout: Layout, number: int) -> str:
    """Print a release's manifest, uncompressed and cut off at MANIFEST_MAX bytes (nothing
    when it has none)."""
    return _manifest_lines(quote(f"{layout.release(number)}/{MANIFEST_NAME}"))
