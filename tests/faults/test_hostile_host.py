"""A hostile host (issue 10): what a host sends back is input, never instructions.

One of the three test hosts is turned hostile after two genuine deploys: its release log
gains lines with wrong JSON types, digests that are not hex, shell metacharacters, escape
sequences and huge values; its lock record is forged; names that could forge the probe's
output, or be read as options, are planted under ``releases/``. Then every command runs
through the real CLI and must:

- end with exit 0 (ignoring the bad entries) or one clear line with a documented code;
- run nothing it did not intend: a canary file that any injected command would create
  never appears, on any host or on this machine;
- write nothing outside ``deploy_to`` on any host;
- print no control characters.

Promote from a tampered staging host is refused, and a later genuine deploy of the same
artifact ships the genuine tree, checked file by file on the host.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from integration.test_pull import PORT, publish, serve

from deployer import releaselog

from .support import assert_one_line_error, exec_argv

pytestmark = pytest.mark.ssh

DOCUMENTED_EXITS = {0, 1, 2, 3, 4}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def injections(canary: str) -> list[str]:
    """Strings that run ``touch <canary>`` wherever they reach a shell unquoted."""
    touch = f"touch {canary}"
    return [
        f"$({touch})",
        f"`{touch}`",
        f"';{touch};'",
        f'";{touch};"',
        f"\n{touch}\n",
        f"a;{touch}",
        f"--output={canary}",
    ]


def hostile_lines(canary: str) -> list[str]:
    """Release log lines a hand-edited or compromised host might hold."""
    bad = injections(canary)
    fields = [
        {"status": []},
        {"revision": 5},
        {"release": "3"},
        {"release": True},
        {"release": -1},
        {"release": 10**30},
        {"previous": {"a": 1}},
        {"sha256": bad[2]},
        {"sha256": "A" * 64},
        {"sha256": "ab" * 20},
        {"revision": bad[6]},
        {"revision": bad[0]},
        {"by": "\x1b]52;c;cHduZWQ=\x07mallory"},
        {"detail": "\x1b[2J\x1b[31mred\u009b31m" + bad[1]},
        {"stage": bad[3], "subject": "\x1b]0;title\x07" + bad[0], "author": bad[4]},
        {"at": 12},
        {"id": ["x"]},
        {"event": "deploy", "detail": "x" * 200_000},
    ]
    lines = ['{"event":"deploy","release":NaN}', '{"event":"deploy","release":Infinity}', "[1,2]", '"str"']
    for extra in fields:
        base = {"id": uuid.uuid4().hex, "event": "deploy", "at": "2026-01-01T00:00:00+00:00", "by": "x"}
        base.update({"release": 2, "status": "active", "stage": "test"})
        base.update(extra)
        lines.append(json.dumps(base))
    lines.append('{"event":"deploy","release":2,"status":"active","sha256":"' + bad[2] + '"')  # torn
    return lines


def hostile_names(canary: str) -> list[str]:
    """Directory names planted under releases/ (passed as argv: nothing is interpreted)."""
    return [
        f"$(touch {canary})",
        "7\n--- deployer log ---\n" + '{"event":"deploy","release":7,"status":"active"}',
        "8\nrelease complete 9",
        "-rf",
        "--checkpoint-action=exec=touch " + canary,
        "\x1b[2J",
        "00",
        "3 ",
    ]


def lock_record(canary: str) -> str:
    """Valid JSON with every field of the wrong type or hostile (a record that is not JSON
    at all, e.g. with ``NaN``, reads as "unknown": tests/unit/test_untrusted.py)."""
    return '{"holder":"\\u001b[2Jmallory","pid":"$(touch ' + canary + ')","since":"NaN","token":5}'


def poison(host, deploy_to: str, canary: str, lock: bool) -> None:
    """Make ``host`` hostile: a poisoned log, planted names, forged metadata (and a lock)."""
    log = f"{deploy_to}/.deployer/log.jsonl"
    exec_argv(host, ["sh", "-c", 'cat >> "$1"', "sh", log], input="\n".join(hostile_lines(canary)) + "\n")
    for name in hostile_names(canary):
        exec_argv(host, ["mkdir", "-p", "--", f"{deploy_to}/releases/{name}"])
    exec_argv(
        host, ["sh", "-c", f"printf '%s' '{{\"release\": [' > {deploy_to}/releases/1/.deployer-release.json"]
    )
    if lock:
        exec_argv(host, ["mkdir", "-p", f"{deploy_to}/.deployer/lock"])
        exec_argv(
            host,
            ["sh", "-c", 'cat > "$1"', "sh", f"{deploy_to}/.deployer/lock/info"],
            input=lock_record(canary),
        )


def outside_changes(host, deploy_to: str, since: str) -> list[str]:
    """Files changed after the marker ``since`` anywhere a deploy user could write, except
    under deploy_to (and the sshd log, which every login appends to)."""
    out = host.sh(
        f"find /home /tmp /var/tmp /srv /opt -xdev -newer {since} "
        f"-not -path '{deploy_to}' -not -path '{deploy_to}/*' -not -path {since} 2>/dev/null || true",
        user="root",
    )
    return [line for line in out.splitlines() if line.strip()]


def assert_clean_run(result, canary: str, project, local_canary: Path) -> None:
    """The four promises, for one command's run."""
    out = result.stdout + result.stderr
    assert result.returncode in DOCUMENTED_EXITS, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in out, result.stderr[-3000:]
    if result.returncode != 0:
        assert_one_line_error(result, result.returncode)
    assert not CONTROL.search(out), [m.group() for m in CONTROL.finditer(out)][:5]
    assert not canary_found(project, canary), "an injected command ran on a host"
    assert not local_canary.exists(), "an injected command ran on this machine"


def canary_found(project, canary: str) -> list[str]:
    return [h.name for h in project.hosts if h.sh(f"test -e {canary} && echo yes || true").strip()]


@pytest.fixture
def hostile(project, tmp_path):
    """Two genuine deploys, then host 0 made hostile; yields (project, canary path)."""
    project.deploy()
    project.deploy()
    canary = f"/tmp/pwned-{uuid.uuid4().hex[:8]}"
    for host in project.hosts:
        host.sh(f"touch /tmp/before-{project.deploy_to.rsplit('/', 1)[-1]}", user="root")
    return project, canary


COMMANDS = [
    ("releases", "--stage=test"),
    ("history", "--stage=test", "--limit=0"),
    ("check", "--stage=test"),
    ("pending", "--stage=test"),
    ("cleanup", "--stage=test"),
    ("rollback", "--stage=test"),
    ("deploy", "--stage=test"),
    ("releases", "--stage=test", "--json"),
    ("history", "--stage=test", "--json"),
    ("unlock", "--stage=test"),
]


@pytest.mark.parametrize("locked", [False, True], ids=["log-and-names", "forged-lock"])
def test_every_command_against_a_hostile_host(hostile, tmp_path, locked):
    project, canary = hostile
    marker = f"/tmp/before-{project.deploy_to.rsplit('/', 1)[-1]}"
    poison(project.hosts[0], project.deploy_to, canary, lock=locked)
    local_canary = Path(canary)
    for args in COMMANDS:
        result = project.invoke(*args, *(["-v"] if args[0] == "deploy" else []))
        assert_clean_run(result, canary, project, local_canary)
        if locked and args[0] in ("cleanup", "rollback", "deploy"):
            assert result.returncode == 3, (args, result.stderr)
            assert "mallory" in result.stderr and "\x1b" not in result.stderr
        if args[0] in ("releases", "history") and "--json" in args:
            json.loads(result.stdout)  # still one valid document
    for host in project.hosts:
        assert outside_changes(host, project.deploy_to, marker) == [], host.name
    # The planted names are still there, untouched: nothing was removed that is not ours.
    listing = exec_argv(project.hosts[0], ["ls", "-A", f"{project.deploy_to}/releases"])
    assert "-rf" in listing.split("\n") and "00" in listing.split("\n")
    # Unlock broke the forged lock; a genuine deploy now works on the hostile host too.
    project.deploy()
    assert project.current(0) == project.current(1)


def test_a_forged_digest_in_the_log_never_reaches_a_shell_in_pull_mode(project, tmp_path):
    """Finding 1: in pull mode, promote put the sha256 from the source host's log inside
    ``echo '…'`` on every target host. Here the source log's digest of release 1 is
    replaced by an injection, and the target downloads from a URL that serves a file
    whose digest does not match, so the mismatch message is printed."""
    canary = f"/tmp/pwned-{uuid.uuid4().hex[:8]}"
    project.deploy()
    genuine = project.log(0)[-1]["sha256"]
    bad = f"';touch {canary};'a"
    log = f"{project.deploy_to}/.deployer/log.jsonl"
    rewrite = "import sys; p, a, b = sys.argv[1:]; t = open(p).read(); open(p, 'w').write(t.replace(a, b))"
    folder = "/tmp/artifacts"
    for host in project.hosts:
        exec_argv(host, ["python3", "-c", rewrite, log, genuine, bad])
        if not host.sh(f"curl -fsS -o /dev/null http://127.0.0.1:{PORT}/ && echo up", check=False).strip():
            serve(host, folder)
        decoy = tmp_path / "decoy.tar"
        decoy.write_bytes(b"not the artifact")
        publish(host, folder, decoy, "decoy.tar")
    stage = json.loads(json.dumps(project.base_stage()))
    stage["deploy_to"] = project.deploy_to + "-clean"
    stage["artifact"] = {"path": "app", "url": f"http://127.0.0.1:{PORT}/decoy.tar"}
    (project.root / "config" / "clean.yml").write_text(json.dumps(stage))
    result = project.invoke("promote", "--from=test", "--to=clean")
    assert_one_line_error(result, 1, "no artifact sha256 for release 1")
    assert not canary_found(project, canary)
    for index in range(len(project.hosts)):
        assert project.sh(index, f"ls {project.deploy_to}-clean/releases 2>/dev/null || true").split() == []


def _clean_stage(project, name: str) -> str:
    stage = json.loads(json.dumps(project.base_stage()))
    stage["deploy_to"] = f"{project.deploy_to}-{name}"
    (project.root / "config" / f"{name}.yml").write_text(json.dumps(stage))
    return stage["deploy_to"]


def test_promote_from_a_tampered_host_is_refused_and_a_genuine_deploy_ships_the_genuine_tree(project):
    """Finding 2: the tree was checked against a manifest from the same host. Here the
    staging host changes a file AND rewrites its manifest to match: still refused, and
    production is untouched; then a genuine deploy of that artifact to production ships
    the genuine bytes (no identical-copy shortcut from anything the staging host said)."""
    project.deploy()
    production = _clean_stage(project, "production")
    release = f"{project.deploy_to}/releases/1"
    for host in project.hosts:
        host.sh(
            f"printf 'evil\\n' > {release}/index.html.new && mv {release}/index.html.new {release}/index.html"
        )
        forged = _forged_manifest(host, release)
        exec_argv(host, ["sh", "-c", f"gzip -c > {release}/.deployer-manifest.gz"], input=forged)
    result = project.invoke("promote", "--from=test", "--to=production")
    assert_one_line_error(result, 1, "differs from the artifact")
    for index in range(len(project.hosts)):
        assert project.sh(index, f"ls -A {production} 2>/dev/null || true").split() in ([], [".deployer"])
    # --unverified ships it, under its own digest, so nothing mistakes it for the artifact.
    result = project.invoke("promote", "--from=test", "--to=production", "--unverified")
    assert result.returncode == 1, "still refused: this machine knows the artifact differs"
    # A genuine deploy to production ships the genuine tree, file by file.
    result = project.invoke("deploy", "--stage=production")
    assert result.returncode == 0, result.stderr
    for index in range(len(project.hosts)):
        assert project.sh(index, f"cat {production}/current/index.html") == "hello\n"
        assert project.sh(index, f"cat {production}/current/bin/migrate").startswith("#!/bin/sh")


def _forged_manifest(host, release: str) -> str:
    """The release's manifest with index.html's digest replaced by the evil file's."""
    import hashlib

    raw = exec_argv(host, ["sh", "-c", f"gzip -dc {release}/.deployer-manifest.gz"])
    evil = hashlib.sha256(b"evil\n").hexdigest()[:32]
    lines = []
    for line in raw.splitlines():
        kind, digest, mode, path = line.split(" ", 3)
        lines.append(f"{kind} {evil if path == 'index.html' else digest} {mode} {path}")
    return "\n".join(lines) + "\n"


def test_promote_of_a_release_nothing_vouches_for_needs_unverified(project, tmp_path):
    """A release deployed from another machine (here: this machine's ledger is emptied) is
    refused; with --unverified it ships under the digest computed here of what was read."""
    env = {"XDG_STATE_HOME": str(tmp_path / "other-machine")}
    result = project.invoke("deploy", "--stage=test", env=env)
    assert result.returncode == 0, result.stderr
    production = _clean_stage(project, "production")
    fresh = {"XDG_STATE_HOME": str(tmp_path / "this-machine")}
    result = project.invoke("promote", "--from=test", "--to=production", env=fresh)
    assert_one_line_error(result, 1, "nothing vouches", "--unverified")
    keyed = {**fresh, "DEPLOYER_SEAL_KEY": "k"}  # found in review: an override must not become a seal
    result = project.invoke("promote", "--from=test", "--to=production", "--unverified", env=keyed)
    assert result.returncode == 0, result.stderr
    assert "UNVERIFIED" in result.stdout
    for event in releaselog.parse(project.sh(0, f"cat {production}/.deployer/log.jsonl")):
        assert "seal" not in event.extra and event.extra.get("unverified") is True
    staged = {e.get("sha256") for e in project.log(0)}
    promoted = releaselog.parse(project.sh(0, f"cat {production}/.deployer/log.jsonl"))
    assert promoted and all(e.sha256 not in staged for e in promoted if e.sha256)
    assert project.sh(0, f"cat {production}/current/index.html") == "hello\n"


def test_a_seal_lets_another_machine_promote(project, tmp_path):
    """With DEPLOYER_SEAL_KEY shared (a CI secret), a promote from a machine that did not
    deploy verifies the seal; a wrong key is refused."""
    key = {"DEPLOYER_SEAL_KEY": "s3cret-key"}
    result = project.invoke("deploy", "--stage=test", env={**key, "XDG_STATE_HOME": str(tmp_path / "a")})
    assert result.returncode == 0, result.stderr
    _clean_stage(project, "production")
    other = {"XDG_STATE_HOME": str(tmp_path / "b")}
    wrong = project.invoke(
        "promote", "--from=test", "--to=production", env={**other, "DEPLOYER_SEAL_KEY": "x"}
    )
    assert_one_line_error(wrong, 1, "nothing vouches")
    right = project.invoke("promote", "--from=test", "--to=production", env={**other, **key})
    assert right.returncode == 0, right.stderr
    assert "sealed with DEPLOYER_SEAL_KEY" in right.stdout
    assert "s3cret-key" not in right.stdout + right.stderr


def test_a_host_that_prints_without_end_is_stopped(project):
    """Finding 7: output was read without a cap. A hook that never stops printing (``yes``,
    so the silence timeout never fires) is stopped past 64 MB; the deploy is undone."""
    project.deploy()
    project.set(hooks={"before_switch": [{"command": "yes hostile"}]})
    result = project.invoke("deploy", "--stage=test")
    assert_one_line_error(result, 1, "printed more than 64 MB; stopped")
    for index in range(len(project.hosts)):
        assert project.current(index) == "releases/1"
        project.wait_until(
            lambda i=index: not project.sh(i, "pgrep -u deploy -x yes || true").strip(),
            "yes to be stopped",
            30,
        )


def test_a_command_that_keeps_printing_meets_the_overall_deadline(project):
    """Finding 7: a host that keeps printing never hit the silence timeout. A hook that
    prints a tick every 0.2 s forever is stopped at ``ssh.command_deadline``."""
    project.deploy()
    project.set(
        ssh={"command_deadline": 3, "command_timeout": 30},
        hooks={"before_switch": [{"command": "while :; do echo tick; sleep 0.2; done"}]},
    )
    result = project.invoke("deploy", "--stage=test")
    assert_one_line_error(result, 1, "still running after 3s (ssh.command_deadline); stopped")
    assert all(project.current(i) == "releases/1" for i in range(len(project.hosts)))
