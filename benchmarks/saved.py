"""A run's figures on disk (``samples.json`` next to its logs), so the report can be written
again (``run.py --report-from``) after its explanations change, without measuring again."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from measure import Sample
from relay import Traffic
from servers import Counters
from workloads import Workload


def save(path: Path, fields: dict) -> None:
    data = dict(fields)
    data["started"] = fields["started"].isoformat()
    data["finished"] = fields["finished"].isoformat()
    data["workloads"] = {k: {**asdict(w), "directory": str(w.directory), "tarball": str(w.tarball)}
                         for k, w in fields["workloads"].items()}  # fmt: skip
    data["samples"] = [{**asdict(s), "log": str(s.log)} for s in fields["samples"]]
    path.write_text(json.dumps(data, indent=1))


def load(path: Path) -> dict:
    data = json.loads(path.read_text())
    data["started"] = datetime.fromisoformat(data["started"])
    data["finished"] = datetime.fromisoformat(data["finished"])
    data["noise"], data["source"] = tuple(data["noise"]), tuple(data["source"])
    data["rtts"] = tuple(data["rtts"])
    data["workloads"] = {
        k: Workload(**{**w, "directory": Path(w["directory"]), "tarball": Path(w["tarball"])})
        for k, w in data["workloads"].items()
    }
    data["samples"] = [_sample(s) for s in data["samples"]]
    return data


def _counters(raw: dict) -> Counters:
    return Counters(**{**raw, "connection_times": tuple(raw["connection_times"])})


def _sample(raw: dict) -> Sample:
    raw = dict(raw)
    raw["per_host"] = [_counters(c) for c in raw["per_host"]]
    raw["traffic"] = [Traffic(**{**t, "first_bytes": tuple(t["first_bytes"])}) for t in raw["traffic"]]
    raw["bastion"] = _counters(raw["bastion"]) if raw["bastion"] else None
    raw["log"] = Path(raw["log"]) if raw["log"] else None
    return Sample(**raw)
