"""Pure builders of every shell script run on hosts. No I/O here: each returns a string.

Every path comes from :class:`~deployer.layout.Layout` and every value is quoted through
:mod:`deployer.shell`. Exit codes that the executor branches on are named constants
(:mod:`.codes`), never matched from stderr text. By family:

- :mod:`.release`: make a release directory (unpack, clone, download), fill it, read it, remove it;
- :mod:`.current`: the atomic switch of ``current``, putting it back, removing it;
- :mod:`.state`: the lock, the release log, the read-only probe and check;
- :mod:`.run`: users' commands (hooks, health checks);
- :mod:`.schedule`: the scheduled cleanup;
- :mod:`.maintenance`: the maintenance page and its record;
- :mod:`.chain`: steps that follow each other on a host, sent as one script.
"""

from .chain import after_switch, finish, then_also, then_unlock, upload_then
from .codes import (
    EXIT_AFTER_SWITCH,
    EXIT_AFTER_UPLOAD,
    EXIT_CLEANUP_FAILED,
    EXIT_EMPTY_SNAPSHOT,
    EXIT_LOCK_HELD,
    EXIT_MISSING_SHARED,
    EXIT_NO_MANIFEST,
    EXIT_NOT_A_RELEASE,
    EXIT_RELEASE_EXISTS,
    EXIT_UNSAFE_PATH,
)
from .current import cancel_pending_switches, point_current, remove_tmp_links, switch, unswitch
from .maintenance import maintenance_off, maintenance_on
from .release import (
    cleanup,
    clone_release,
    download_release,
    finish_release,
    link_shared,
    pack_release,
    read_base64,
    read_manifest,
    remove_deploy_to,
    remove_releases,
    remove_snapshots,
    unpack,
)
from .run import healthcheck, run_hook, snapshot, watch_check
from .schedule import DETECT_SCHEDULER, SCHEDULE_FILES, install_schedule, remove_schedule
from .state import acquire_lock, append_log, break_lock, check, lock_and_probe, probe, release_lock

__all__ = [
    "DETECT_SCHEDULER",
    "EXIT_AFTER_SWITCH",
    "EXIT_AFTER_UPLOAD",
    "EXIT_CLEANUP_FAILED",
    "EXIT_EMPTY_SNAPSHOT",
    "EXIT_LOCK_HELD",
    "EXIT_MISSING_SHARED",
    "EXIT_NOT_A_RELEASE",
    "EXIT_NO_MANIFEST",
    "EXIT_RELEASE_EXISTS",
    "EXIT_UNSAFE_PATH",
    "SCHEDULE_FILES",
    "acquire_lock",
    "after_switch",
    "append_log",
    "break_lock",
    "cancel_pending_switches",
    "check",
    "cleanup",
    "clone_release",
    "download_release",
    "finish",
    "finish_release",
    "healthcheck",
    "install_schedule",
    "link_shared",
    "lock_and_probe",
    "maintenance_off",
    "maintenance_on",
    "pack_release",
    "point_current",
    "probe",
    "read_base64",
    "read_manifest",
    "release_lock",
    "remove_deploy_to",
    "remove_releases",
    "remove_schedule",
    "remove_snapshots",
    "remove_tmp_links",
    "run_hook",
    "snapshot",
    "switch",
    "then_also",
    "then_unlock",
    "unpack",
    "unswitch",
    "upload_then",
    "watch_check",
]
