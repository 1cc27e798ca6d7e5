"""Errors a user can cause or meet, each with the exit code the CLI leaves with.

Every error carries one line that names the file, key, host or command at fault; the
task layer prints that line and exits with ``exit_code``, never a traceback.
"""

from __future__ import annotations


class DeployerError(Exception):
    """Base class: a failure with a one-line explanation and an exit code.

    A kind names its exit code where it is declared: ``class LockHeld(DeployerError,
    exit_code=3)``; a kind that names none keeps its parent's."""

    exit_code = 1

    def __init_subclass__(cls, exit_code: int | None = None, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if exit_code is not None:
            cls.exit_code = exit_code

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(DeployerError, exit_code=2):
    """Bad or missing configuration, template or usage: nothing was contacted."""


class ArtifactError(DeployerError, exit_code=2):
    """The artifact is missing, empty, unreadable or unsafe: no host was touched."""


class DeployFailed(DeployerError, exit_code=1):
    """A deploy or rollback failed; nothing is switched, or it was switched back."""


class CommandTimeout(DeployFailed):
    """A remote command stayed silent past ``ssh.command_timeout`` on a host that still answers."""


class HookFailed(DeployFailed):
    """A hook exited non-zero; the message names the hook, the host and its output."""


class LockHeld(DeployerError, exit_code=3):
    """Another deploy holds the stage lock on at least one host."""


class HostUnreachable(DeployerError, exit_code=4):
    """A host could not be reached (connection, authentication or host key)."""


class Interrupted(DeployerError, exit_code=130):
    """The user pressed Ctrl-C; whatever was started has been undone where possible."""


class MigrationsCrossed(DeployerError, exit_code=5):
    """A rollback would run old code on a schema it has not seen, and no way was chosen
    (--migrate-down, --with-data or --code-only): nothing was switched."""
