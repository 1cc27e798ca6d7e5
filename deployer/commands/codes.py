"""Exit codes of remote scripts that the executor branches on (never stderr text)."""

from __future__ import annotations

EXIT_LOCK_HELD = 75
EXIT_MISSING_SHARED = 76
EXIT_RELEASE_EXISTS = 77
EXIT_NOT_A_RELEASE = 78
EXIT_NO_MANIFEST = 79
EXIT_UNSAFE_PATH = 80
EXIT_AFTER_SWITCH = 81  # commands.chain: current switched, a step sent with the switch failed
EXIT_AFTER_UPLOAD = 82  # commands.chain: the release was made, preparing it (links, files) failed
EXIT_CLEANUP_FAILED = 83  # commands.chain: logged and unlocked; removing old releases failed
EXIT_EMPTY_SNAPSHOT = 84  # the snapshot command wrote nothing (with ``snapshot_empty`` on stdout)
