"""Steps sent as one script (deployer.commands.chain): each part runs only after the one
before succeeded, its own ``set -e`` in force, and the exit code says which part failed."""

from __future__ import annotations

import subprocess
from pathlib import Path

from deployer import commands, plan, releaselog
from deployer.facts import COMPLETE, HostFacts

FAIL_MIDWAY = "set -e\nfalse\necho reached >> {log}"  # set -e must stop it at `false`


def run(script: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run(["sh", "-c", script], input=stdin, capture_output=True)


def test_a_failed_switch_runs_nothing_after_it_and_keeps_its_code(tmp_path: Path):
    log = tmp_path / "log"
    done = run(commands.after_switch("set -e\nexit 78", f"echo then >> {log}"))
    assert done.returncode == 78
    assert not log.exists()


def test_set_e_holds_inside_a_part(tmp_path: Path):
    log = tmp_path / "log"
    done = run(commands.after_switch(FAIL_MIDWAY.format(log=log), f"echo then >> {log}"))
    assert done.returncode == 1
    assert not log.exists()  # neither the rest of the switch nor what follows it ran


def test_a_failure_after_the_switch_exits_81(tmp_path: Path):
    assert run(commands.after_switch("true", "set -e\nfalse\ntrue")).returncode == commands.EXIT_AFTER_SWITCH


def test_the_unlock_runs_only_after_success(tmp_path: Path):
    mark = tmp_path / "unlocked"
    assert run(commands.then_unlock("false", f"touch {mark}")).returncode == 1
    assert not mark.exists()
    assert run(commands.then_unlock("true", f"touch {mark}")).returncode == 0
    assert mark.exists()


def test_a_failed_cleanup_still_unlocks_and_says_so(tmp_path: Path):
    mark = tmp_path / "unlocked"
    done = run(commands.finish("true", "false", f"touch {mark}"))
    assert done.returncode == commands.EXIT_CLEANUP_FAILED
    assert mark.exists()
    switched = run(commands.after_switch("true", commands.finish("true", "false", "true")))
    assert switched.returncode == commands.EXIT_CLEANUP_FAILED  # passes through the switch's wrapper


def test_a_failed_log_leaves_the_lock_and_skips_the_cleanup(tmp_path: Path):
    mark, cleaned = tmp_path / "unlocked", tmp_path / "cleaned"
    done = run(commands.finish("false", f"touch {cleaned}", f"touch {mark}"))
    assert done.returncode == 1
    assert not mark.exists() and not cleaned.exists()


def test_upload_then_reads_exactly_the_files_ahead_of_the_payload(tmp_path: Path):
    files, out = tmp_path / "files.tar", tmp_path / "out"
    script = commands.upload_then(f"cat > {out}", f"cat {files} >> {out}.files", str(files), 5)
    done = run(script, b"12345payload")
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == b"payload"
    assert (tmp_path / "out.files").read_bytes() == b"12345"
    assert not files.exists()  # removed on the way out


def test_upload_then_says_which_part_failed(tmp_path: Path):
    files = str(tmp_path / "files.tar")
    assert run(commands.upload_then("exit 77", "true", files, 0)).returncode == 77
    after = run(commands.upload_then("cat >/dev/null", "exit 76", files, 0))
    assert after.returncode == commands.EXIT_AFTER_UPLOAD
    assert run(commands.upload_then("true", "true", files, 10), b"short").returncode == 1


def test_facts_after_a_switch_are_what_a_probe_would_read():
    before = HostFacts(exists=True, current=2, current_raw="releases/2", releases={1: COMPLETE, 2: COMPLETE})
    event = releaselog.Event(id="x", event="deploy", at="", by="", stage="s", release=3, status="active")
    after = plan.after_switch({"web1": before}, 3, [event])["web1"]
    assert (after.current, after.current_raw, after.complete) == (3, "releases/3", {1, 2, 3})
    assert after.log == [event]
    assert before.current == 2  # the facts read under the lock stay as they were
