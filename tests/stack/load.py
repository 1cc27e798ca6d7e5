"""A bounded load generator: a few threads sending GETs to nginx's published ports on
127.0.0.1, one new connection per request, recording what every request got.

It stops by itself after ``max_requests`` or ``max_seconds``, whichever comes first, and
the test stops it earlier once enough requests were answered after the command returned.
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    port: int
    started: float  # time.monotonic() when the request was sent
    status: int | None  # None: the connection failed
    body: str

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 500


@dataclass
class Load:
    ports: list[int]
    path: str = "/"
    threads: int = 3
    max_requests: int = 60000
    max_seconds: float = 240
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers = [
            threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(self.threads)
        ]

    def __enter__(self) -> Load:
        self._deadline = time.monotonic() + self.max_seconds
        for worker in self._workers:
            worker.start()
        self.wait(lambda: sum(not s.failed for s in self.samples) >= 20 * len(self.ports), "load to start")
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=30)

    def _run(self, index: int) -> None:
        turn = index
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            with self._lock:
                if len(self.samples) >= self.max_requests:
                    return
            port = self.ports[turn % len(self.ports)]
            turn += 1
            self._record(self._one(port))

    def _one(self, port: int) -> Sample:
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
        try:
            conn.request("GET", self.path, headers={"Connection": "close"})
            response = conn.getresponse()
            return Sample(port, started, response.status, response.read().decode("utf-8", "replace").strip())
        except (OSError, http.client.HTTPException) as exc:
            return Sample(port, started, None, f"{type(exc).__name__}: {exc}")
        finally:
            conn.close()

    def _record(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def wait(self, predicate, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline or self._stop.is_set():
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def settle(self, since: float, per_port: int = 30) -> None:
        """Go on until every port answered ``per_port`` requests sent after ``since``; stop."""
        self.wait(
            lambda: all(
                sum(s.port == p and s.started >= since for s in self.samples) >= per_port for p in self.ports
            ),
            "requests after the command returned",
        )
        self.__exit__()

    # -- what happened ----------------------------------------------------------------
    def failures(self) -> list[Sample]:
        return [s for s in self.samples if s.failed]

    def after(self, since: float) -> set[str]:
        """Every distinct answer to a request sent after ``since``."""
        return {s.body for s in self.samples if s.started >= since}

    def report(self, case: str) -> dict:
        """Requests sent and failed, for the closing note; appended to $DEPLOYER_LOAD_REPORT."""
        line = {"case": case, "sent": len(self.samples), "failed": len(self.failures()),
                "answers": sorted({s.body for s in self.samples if not s.failed})}  # fmt: skip
        target = os.environ.get("DEPLOYER_LOAD_REPORT")
        if target:
            with open(target, "a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")
        print(json.dumps(line))
        return line
