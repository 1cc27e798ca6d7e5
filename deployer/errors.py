"""Errors a user can cause or meet, each with the exit code the CLI leaves with.

Every error carries one line that names the file, key, host or command at fault; the
task layer prints that line and exits with ``exit_code``, never a traceback.
"""

from __future__ import annotations


class DeployerError(Exception):
    """Base class: a failure with a one-line explanation and an exit code."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ConfigError(DeployerError):
    """Bad or missing configuration, template or usage: nothing was contacted."""

    exit_code = 2


class ArtifactError(DeployerError):
    """The artifact is missing, empty, unreadable or unsafe: no host was touched."""

    exit_code = 2


class DeployFailed(DeployerError):
    """A deploy or rollback failed; nothing is switched, or it was switched back."""

    exit_code = 1


class CommandTimeout(DeployFailed):
    """A remote command stayed silent past ``ssh.command_timeout`` on a host that still answers."""


class HookFailed(DeployFailed):
    """A hook exited non-zero; the message names the hook, the host and its output."""


class LockHeld(DeployerError):
    """Another deploy holds the stage lock on at least one host."""

    exit_code = 3


class HostUnreachable(DeployerError):
    """A host could not be reached (connection, authentication or host key)."""

    exit_code = 4


class Interrupted(DeployerError):
    """The user pressed Ctrl-C; whatever was started has been undone where possible."""

    exit_code = 130
