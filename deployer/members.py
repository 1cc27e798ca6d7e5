"""What an artifact may hold, member by member and as a whole. Pure: no I/O.

Two passes, because a link is only safe in the context of every other link. Each member
on its own (:func:`member_problem`): no absolute path, no ``..``, no device, no name that
a command could read as an option, no setuid/setgid/sticky bit and nothing world-writable
(``tar`` run as root keeps such modes). Then the archive's link table as a whole
(:class:`LinkTable`): every symlink and hard link target is walked component by component
the way the kernel walks a path, following the archive's own symlinks (at most
:data:`MAX_LINK_HOPS` of them, like the kernel's ELOOP limit), so that a chain such as
``d1/l -> ..``, ``d1/l2 -> l/..``, ``d1/l3 -> l2/../..``, ``config -> d1/l3/victim``, each
harmless-looking alone, is refused as a whole.
"""

from __future__ import annotations

import posixpath
import tarfile

MAX_LINK_HOPS = 40  # Linux's MAXSYMLINKS: a walk that follows more symlinks is a loop
SPECIAL_BITS = 0o7000  # setuid, setgid, sticky
WORLD_WRITABLE = 0o002
RESERVED_PREFIX = ".deployer-"  # the release's manifest, metadata, delta exclude list


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


def mode_problem(mode: int) -> str | None:
    """Why a file or directory mode is refused (kept by ``tar`` as root), or None."""
    if mode & SPECIAL_BITS:
        return f"mode {mode & 0o7777:04o} has a setuid, setgid or sticky bit"
    if mode & WORLD_WRITABLE:
        return f"mode {mode & 0o7777:04o} is world-writable"
    return None


def safe_mode(mode: int) -> int:
    """A mode with the special bits and world-write taken away (directory artifacts)."""
    return mode & 0o777 & ~WORLD_WRITABLE


def member_problem(member: tarfile.TarInfo) -> str | None:
    """Why a tar member would escape or damage the release on its own, or None."""
    name = member.name
    parts = _parts(name)
    if name.startswith("/"):
        return "absolute path"
    if "\n" in name or "\r" in name:
        return "newline in path"
    if ".." in parts:
        return "'..' in path"
    if parts and parts[0].startswith("-"):
        return "name starts with '-' (a command could read it as an option)"
    if parts and parts[0].startswith(RESERVED_PREFIX):
        return f"names starting with {RESERVED_PREFIX} are the deployer's own (manifest, metadata)"
    if member.isdev():
        return "device or fifo file"
    if member.issym():
        target = member.linkname
        if target.startswith("/"):
            return f"symlink to absolute path {target}"
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname("/".join(parts)), target))
        if resolved == ".." or resolved.startswith("../"):
            return f"symlink pointing outside the release ({target})"
    if member.islnk():
        target = member.linkname
        if target.startswith("/") or ".." in target.split("/"):
            return f"hard link pointing outside the release ({target})"
    if not (member.isfile() or member.isdir() or member.issym() or member.islnk()):
        return "unsupported member type"
    if member.isfile() or member.isdir():
        return mode_problem(member.mode)
    return None


class _Escape(Exception):
    """The walk left the release (``..`` above its root, or an absolute target)."""


class _Loop(Exception):
    """The walk followed more than MAX_LINK_HOPS symlinks."""


def resolve(path: str, symlinks: dict[str, str], follow_last: bool) -> str:
    """Where ``path`` (relative to the release root) really leads once unpacked, walking
    it component by component and following the archive's symlinks, as the kernel does:
    a ``..`` after a symlink climbs from where the link led, not from where it stood.

    Raises :class:`_Escape` if the walk leaves the root, :class:`_Loop` past the hop limit.
    """
    done: list[str] = []
    todo = path.split("/")
    hops = 0
    while todo:
        part = todo.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not done:
                raise _Escape
            done.pop()
            continue
        done.append(part)
        target = symlinks.get("/".join(done))
        if target is None or not (todo or follow_last):  # "l/" and "l/." follow l, like the kernel
            continue
        hops += 1
        if hops > MAX_LINK_HOPS:
            raise _Loop
        if target.startswith("/"):
            raise _Escape
        done.pop()
        todo = target.split("/") + todo
    return "/".join(done)


class LinkTable:
    """Every link of an archive, collected as it streams past, checked once it is whole
    (before anything is sent anywhere)."""

    def __init__(self) -> None:
        self.symlinks: dict[str, str] = {}
        self.hardlinks: dict[str, str] = {}
        self.kinds: dict[str, str] = {}

    def add(self, member: tarfile.TarInfo) -> str | None:
        """Record a member; a name seen twice where either is a link is refused, since
        which one a later member would be unpacked through depends on the order."""
        name = "/".join(_parts(member.name))
        kind = "l" if member.issym() else "h" if member.islnk() else "d" if member.isdir() else "f"
        before = self.kinds.get(name)
        self.kinds[name] = kind
        if before is not None and {"l", "h"} & {before, kind}:
            return "appears twice in the archive, once as a link"
        if kind == "l":
            self.symlinks[name] = member.linkname
        elif kind == "h":
            self.hardlinks[name] = member.linkname
        return None

    def problem(self) -> tuple[str, str] | None:
        """(member name, why) for the first member unpacked through a link, or link whose
        real target lies outside the release or loops; None when all stay inside."""
        symlinks = self._effective_symlinks()
        for name in sorted(self.kinds):
            # Nothing may be unpacked through a link: a member's name is then where it
            # really lands, which is what every walk below assumes.
            parts = name.split("/")
            through = next(
                (p for p in ("/".join(parts[:i]) for i in range(1, len(parts))) if p in symlinks), None
            )
            if through is not None:
                return name, f"path goes through the symlink {through} of the archive"
        for name, target in sorted(symlinks.items()):
            why = self._walk(
                symlinks, name, True, f"symlink chain leads outside the release ({name} -> {target})"
            )
            if why:
                return name, why
        for name, target in sorted(self.hardlinks.items()):
            # link(2) follows symlinks in every component of the target but the last.
            why = self._walk(symlinks, target, False, f"hard link target {target} leads outside the release")
            if why:
                return name, why
        return None

    def _effective_symlinks(self) -> dict[str, str]:
        """The symlinks once unpacked: a hard link to a symlink is that same symlink under
        another name, so its target is read from the new name's folder (``up -> ..``
        hard-linked as ``d/x/up`` stays inside; hard-linked at the top it does not)."""
        symlinks = dict(self.symlinks)
        changed = True
        while changed:
            changed = False
            for name, target in self.hardlinks.items():
                try:
                    real = resolve(target, symlinks, follow_last=False)
                except (_Escape, _Loop):
                    continue  # refused below, as the hard link's own problem
                if real in symlinks and name not in symlinks:
                    symlinks[name] = symlinks[real]
                    changed = True
        return symlinks

    @staticmethod
    def _walk(symlinks: dict[str, str], path: str, follow_last: bool, escape: str) -> str | None:
        try:
            resolve(path, symlinks, follow_last)
        except _Escape:
            return escape
        except _Loop:
            return f"more than {MAX_LINK_HOPS} symlinks in a row (a loop)"
        return None
