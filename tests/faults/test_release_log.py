"""The release log (``.deployer/log.jsonl``): append-only JSON lines that survive torn
writes, junk and concurrent writers."""

from __future__ import annotations

import random
import threading

import pytest

from deployer import commands, releaselog
from deployer.layout import Layout
from deployer.ssh import connect

from .support import Gaps, states

pytestmark = pytest.mark.ssh

TORN = '{"id":"torn","event":"deploy","at":"2026-01-01T00:00:00+00:00","rel'
JUNK = [
    "[1,2]",
    '"just a string"',
    '{"event":5}',
    '{"event":"deploy","release":"x"}',
    '{"event":"deploy","release":true}',
    "{not json",
]


def test_torn_last_line_and_junk_never_break_history(project):
    project.deploy()
    log = f"{project.deploy_to}/.deployer/log.jsonl"
    project.sh(0, f"printf '%s' '{TORN}' >> {log}")  # power loss in the middle of a line
    junk = " ".join(f"'{line}'" for line in JUNK)
    project.sh(1, f"printf '%s\\n' {junk} >> {log} && printf '\\377\\376 binary junk\\n' >> {log}")
    raw_before = [s.log for s in states(project)]

    listing = project.invoke("releases", "--stage=test")
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
    assert listing.stdout.count("active") == 3, listing.stdout  # release 1, active, on each host

    project.deploy()
    after = states(project)
    for state, raw in zip(after, raw_before):
        assert state.log.startswith(raw), state.name  # append-only: nothing before was rewritten
    gaps = Gaps()
    for state in after:
        gaps.expect(
            state.statuses(2) == ["staged", "active"],
            f"{state.name}: events of release 2 readable in its log: {state.statuses(2)} (expected staged, active)",
        )

    back = project.invoke("rollback", "--stage=test")
    assert back.returncode == 0, back.stderr
    assert {s.current for s in states(project)} == {"releases/1"}
    listing = project.invoke("releases", "--stage=test")
    assert listing.returncode == 0 and "rolled-back" in listing.stdout, listing.stdout
    gaps.check()


def test_concurrent_appends_from_two_deployers_stay_whole_json_lines(project):
    """Two deployers (two machines, as far as the hosts can tell: one SSH connection each)
    append events to every host's log at the same time, with the tool's own script builder.
    Event sizes go up to what a real event can reach (a 500-character masked detail, which
    JSON-escapes to ~3 KB)."""
    project.deploy()
    config = project.config()
    layout = Layout(config.deploy_to)
    per_writer = 60
    rng = random.Random(3)
    details = [
        rng.choice(["", "x" * rng.randint(1, 500), "é日🚀'\"$(x)`;\n" * rng.randint(1, 38)])
        for _ in range(per_writer)
    ]

    errors: list[str] = []  # an assert inside a thread would only be a warning: collect, assert below

    def writer(who: str, index: int) -> None:
        try:
            session = connect(config, config.hosts[index])
        except Exception as exc:
            errors.append(f"{who} on host {index}: {exc}")
            return
        try:
            i = 0
            while i < per_writer:
                batch = []
                for _ in range(1 + i % 3):  # the tool appends one to three events at a time
                    if i >= per_writer:
                        break
                    batch.append(
                        releaselog.Event(
                            id=f"{who}-{i}",
                            event="deploy",
                            at=f"2030-01-01T00:00:{i:02d}+00:00",
                            by=who,
                            stage="test",
                            release=1000 + i,
                            status="staged",
                            detail=details[i][:500],
                        ).to_json()
                    )
                    i += 1
                result = session.run(commands.append_log(layout, batch))
                if not result.ok:
                    errors.append(f"{who} on host {index}: append exited {result.exit_code}: {result.stderr}")
                    return
        except Exception as exc:
            errors.append(f"{who} on host {index}: {exc!r}")
        finally:
            session.close()

    threads = [
        threading.Thread(target=writer, args=(who, index))
        for who in ("alice@one", "bob@two")
        for index in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    assert errors == [], errors

    expected = {f"{who}-{i}" for who in ("alice@one", "bob@two") for i in range(per_writer)}
    for state in states(project):
        lines = [line for line in state.log.splitlines() if line.strip()]
        parsed = releaselog.parse(state.log)
        assert len(parsed) == len(lines), f"{state.name}: {len(lines) - len(parsed)} broken line(s)"
        ids = [e.id for e in parsed if e.id in expected]
        assert sorted(ids) == sorted(expected), state.name  # every event once, none torn or merged
        assert {e.detail or "" for e in parsed if e.id in expected} <= {d[:500] for d in details}
    listing = project.invoke("releases", "--stage=test")
    assert listing.returncode == 0 and "Traceback" not in listing.stderr, listing.stderr
