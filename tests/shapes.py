"""The documented shapes of --json output (docs/json.md), as data the tests check against.

A shape is a dict of key -> type (or nested shape, or [shape] for a list of them); values
may be None where the type tuple includes type(None).
"""

from __future__ import annotations

from typing import Any

N = type(None)
HOST_ROW = {"host": str, "release": (int, N), "previous": (int, N), "status": str, "seconds": (int, float)}
DEPLOY_SHAPE = {
    "ok": bool,
    "command": str,
    "stage": str,
    "release": (int, N),
    "dry_run": bool,
    "seconds": (int, float),
    "hosts": [HOST_ROW],
}
RELEASE_ROW = {
    "release": int,
    "current": bool,
    "status": str,
    "deployed_at": (str, N),
    "deployed_by": (str, N),
    "sha256": (str, N),
    "revision": (str, N),
    "subject": (str, N),
    "reason": (str, N),
    "schema_before": (str, N),
    "schema_after": (str, N),
    "snapshot_bytes": (int, N),
    "snapshot_path": (str, N),
}
RELEASES_SHAPE = {
    "stage": str,
    "deploy_to": str,
    "diverged": bool,
    "hosts": {
        "*": {
            "current": (int, N), "current_target": (str, N), "releases": [RELEASE_ROW], "lock": (dict, N),
            "maintenance": (dict, N),
        }
    },
}  # fmt: skip
MAINTENANCE_STATE = {"on": bool, "since": (str, N), "reason": (str, N), "by": (str, N)}
EVENT = {"id": str, "event": str, "at": str, "by": str, "stage": str}
HISTORY_SHAPE = {"stage": str, "events": [EVENT]}
CHECK_SHAPE = {
    "stage": str,
    "hosts": {"*": {"ok": bool, "unreachable": bool, "problems": [str], "notes": [str]}},
}
CLEANUP_SHAPE = {"command": str, "stage": str, "ok": bool, "removed": {"*": [int]}}
NUMBER = (int, float)
INCIDENT = {
    "release": int,
    "went_live": str,
    "restored_at": (str, N),
    "seconds": (*NUMBER, N),
    "reason": (str, N),
    "cause": str,
    "by": (str, N),
}
METRICS_SHAPE = {
    "stage": str,
    "since": str,
    "until": str,
    "deploys": int,
    "deploys_per_day": NUMBER,
    "lead_time_seconds": {"median": (*NUMBER, N), "p90": (*NUMBER, N), "samples": int},
    "change_failure_rate": (*NUMBER, N),
    "time_to_restore_seconds": {"median": (*NUMBER, N), "samples": int},
    "incidents": [INCIDENT],
    "bands": {"*": (str, N)},
    "per_day": [{"day": str, "deploys": int, "failures": int}],
    "lead_time_by_release": [{"release": int, "at": str, "median": (*NUMBER, N)}],
    "notes": [str],
    "hosts": {"*": (int, N)},
}
MAINTENANCE_SHAPE = {
    "command": str, "ok": bool, "stage": str, "maintenance": str, "reason": (str, N), "since": (str, N),
    "dry_run": bool, "hosts": {"*": {"was_on": bool}},
}  # fmt: skip
ERROR_SHAPE = {"ok": bool, "error": str, "exit_code": int}


def conforms(value: Any, shape: Any) -> bool:
    """True if ``value`` has at least the keys and types of ``shape``."""
    if isinstance(shape, list):
        return isinstance(value, list) and all(conforms(v, shape[0]) for v in value)
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return False
        if "*" in shape:
            return all(conforms(v, shape["*"]) for v in value.values())
        return all(k in value and conforms(value[k], s) for k, s in shape.items())
    return isinstance(value, shape) and not (shape is int and isinstance(value, bool))
