"""CLI behaviours through the real ``invoke`` CLI against the three SSH hosts, each checked
on the hosts themselves: artifact.build, history and --limit, how the stage is chosen,
check on an unreachable host, rollback of a subset, --json / -v / --quiet over SSH, and
ssh.command_timeout as a silence timeout."""

from __future__ import annotations

import json
import re

import pytest

from shapes import CHECK_SHAPE, DEPLOY_SHAPE, HISTORY_SHAPE, RELEASES_SHAPE, conforms

pytestmark = pytest.mark.ssh


def run(p, *args, env=None):
    result = p.invoke(*args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def one_line_error(result, code: int) -> str:
    assert result.returncode == code, (result.returncode, result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, (
        result.stderr
    )
    return lines[0]


# -- artifact.build ----------------------------------------------------------------------------

BUILD_SH = """set -e
for cid in {cids}; do
  docker exec -u deploy "$cid" sh -c 'printf "%s lock=%s releases=%s\\n" "$(hostname)" \\
    "$(test -e {d}/.deployer/lock && echo held || echo free)" "$(ls {d}/releases 2>/dev/null | tr "\\n" ,)"'
done > build-saw.txt
printf 'built by the build step\\n' > app/BUILT
"""


def test_build_runs_locally_before_any_host_is_touched_and_ships_its_output(project):
    d = project.deploy_to
    cids = " ".join(h.container_id for h in project.hosts)
    (project.root / "build.sh").write_text(BUILD_SH.format(cids=cids, d=d))
    project.set(artifact={"build": "sh build.sh"})
    run(project, "deploy", "--stage=test")
    (project.root / "app" / "BUILT").unlink()
    run(project, "deploy", "--stage=test")
    # What the build saw on each host while it ran, during the second deploy: release 1
    # only, and no lock yet (the lock is taken after the local checks).
    saw = (project.root / "build-saw.txt").read_text().splitlines()
    assert [line.split(" ", 1)[1] for line in saw] == ["lock=free releases=1,"] * 3, saw
    for index in range(3):
        assert (
            project.read(index, "releases/2/BUILT") == "built by the build step\n"
        )  # the build's output shipped
        assert project.current(index) == "releases/2"


def test_a_failing_build_is_one_line_exit_2_and_changes_no_host(project):
    run(project, "deploy", "--stage=test")
    before = [project.snapshot(i) for i in range(3)]
    project.set(artifact={"build": "echo compiling; echo 'src/app.c:3: error: boom' >&2; exit 3"})
    line = one_line_error(project.invoke("deploy", "--stage=test"), 2)
    assert line == (
        "error: artifact.build: `echo compiling; echo 'src/app.c:3: error: boom' >&2; exit 3` "
        "exited 3: src/app.c:3: error: boom"
    ), line
    assert [project.snapshot(i) for i in range(3)] == before


# -- history -----------------------------------------------------------------------------------


def history_rows(text: str) -> list[tuple[str, str, str]]:
    """(when, event, release) of each data row of the history table."""
    rows = []
    for line in text.splitlines():
        match = re.match(r"\s*(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)\s+(\S+)\s+(\d*)", line)
        if match:
            rows.append(match.groups())
    return rows


def test_history_lists_every_event_of_the_log_and_limit_keeps_the_last(project):
    for _ in range(3):
        run(project, "deploy", "--stage=test")
    run(project, "rollback", "--stage=test")
    logged = project.log(0)
    assert [project.log(i) for i in (1, 2)] == [logged, logged]
    expected = [
        (e["at"][:19].replace("T", " "), e["event"], "" if e.get("release") is None else str(e["release"]))
        for e in logged
    ]
    assert len(expected) == 8  # 3 x (staged, active) + rollback (target active, the one left rolled-back)
    text = run(project, "history", "--stage=test")
    assert history_rows(text.stdout) == expected, text.stdout
    for status in ("staged", "active", "rolled-back"):
        assert status in text.stdout
    limited = run(project, "history", "--stage=test", "--limit=2")
    assert history_rows(limited.stdout) == expected[-2:], limited.stdout
    everything = run(project, "history", "--stage=test", "--limit=0")
    assert history_rows(everything.stdout) == expected
    data = json.loads(run(project, "history", "--stage=test", "--json", "--limit=3").stdout)
    assert conforms(data, HISTORY_SHAPE) and [e["id"] for e in data["events"]] == [
        e["id"] for e in logged[-3:]
    ]
    bad = project.invoke("history", "--stage=test", "--limit=x")
    assert one_line_error(bad, 2) == "error: --limit: expected a release number, got 'x'"


# -- which stage -------------------------------------------------------------------------------


def test_stage_comes_from_the_flag_then_deployer_stage_and_none_is_an_error(project):
    logins = [h.logins() for h in project.hosts]
    none = project.invoke("deploy", env={"DEPLOYER_STAGE": ""})
    assert (
        one_line_error(none, 2)
        == "error: --stage: no stage given and no default_stage in config/deploy.yml (stages: test)"
    )
    assert [h.logins() for h in project.hosts] == logins  # refused before any host was contacted
    assert all(project.snapshot(i) == "" for i in range(3))  # nothing deployed anywhere
    run(project, "deploy", env={"DEPLOYER_STAGE": "test"})
    assert [project.current(i) for i in range(3)] == ["releases/1"] * 3
    run(project, "deploy", "--stage=test", env={"DEPLOYER_STAGE": "nope"})  # the flag wins
    assert [project.current(i) for i in range(3)] == ["releases/2"] * 3


# -- check with an unreachable host ------------------------------------------------------------


def test_check_exits_4_naming_an_unreachable_host_and_reports_the_others(project, ssh_hosts):
    project.set(
        hosts=[{"host": "127.0.0.1", "port": h.port, "user": "deploy"} for h in ssh_hosts]
        + [{"host": "127.0.0.1", "port": 1, "user": "deploy"}]
    )
    result = project.invoke("check", "--stage=test")
    assert one_line_error(result, 4) == "error: check: some hosts are unreachable (see above)"
    assert re.search(r"^127\.0\.0\.1:1: 1 problem", result.stdout, re.M), result.stdout
    for host in ssh_hosts:
        assert re.search(rf"^{re.escape(host.name)}: ok \(", result.stdout, re.M), result.stdout
    as_json = project.invoke("check", "--stage=test", "--json")
    assert as_json.returncode == 4, as_json.stderr
    data = json.loads(as_json.stdout)
    assert conforms(data, CHECK_SHAPE), data
    assert data["hosts"]["127.0.0.1:1"]["unreachable"] is True and not data["hosts"]["127.0.0.1:1"]["ok"]
    assert all(data["hosts"][h.name]["ok"] for h in ssh_hosts), data
    assert all(project.snapshot(i) == "" for i in range(3))  # check changes nothing


# -- rollback of a subset ----------------------------------------------------------------------


def test_rollback_with_hosts_or_roles_switches_only_those(project):
    for _ in range(3):
        run(project, "deploy", "--stage=test")
    second = project.hosts[1].name
    untouched = project.snapshot(2)
    run(project, "rollback", "--stage=test", f"--hosts={second}")
    assert [project.current(i) for i in range(3)] == ["releases/3", "releases/2", "releases/3"]
    run(project, "rollback", "--stage=test", "--roles=db")  # host 1 only has role db
    assert [project.current(i) for i in range(3)] == ["releases/2", "releases/2", "releases/3"]
    assert project.snapshot(2) == untouched  # never touched: no switch, no log line, no lock
    for index in (0, 1):
        last = project.log(index)[-2:]
        assert [(e["event"], e["release"], e["status"]) for e in last] == [
            ("rollback", 2, "active"),
            ("rollback", 3, "rolled-back"),
        ], last
    assert project.release_dirs(2) == [1, 2, 3]


# -- --json, -v and --quiet over SSH -----------------------------------------------------------


def test_json_output_over_ssh_matches_the_hosts(project):
    names = [h.name for h in project.hosts]
    first = json.loads(run(project, "deploy", "--stage=test", "--json").stdout)
    second = json.loads(run(project, "deploy", "--stage=test", "--json").stdout)
    for data, number, previous in ((first, 1, None), (second, 2, 1)):
        assert conforms(data, DEPLOY_SHAPE), data
        assert data["ok"] is True and data["release"] == number and data["dry_run"] is False
        assert [(r["host"], r["release"], r["previous"], r["status"]) for r in data["hosts"]] == [
            (n, number, previous, "active") for n in names
        ]
    assert [project.current(i) for i in range(3)] == ["releases/2"] * 3
    releases = json.loads(run(project, "releases", "--stage=test", "--json").stdout)
    assert conforms(releases, RELEASES_SHAPE) and releases["diverged"] is False
    for index, name in enumerate(names):
        host = releases["hosts"][name]
        assert host["current"] == 2 and host["current_target"] == project.current(index)
        assert [r["release"] for r in host["releases"]] == sorted(project.release_dirs(index), reverse=True)
        assert host["lock"] is None
    back = json.loads(run(project, "rollback", "--stage=test", "--json").stdout)
    assert conforms(back, DEPLOY_SHAPE) and back["command"] == "rollback" and back["release"] == 1
    assert [project.current(i) for i in range(3)] == ["releases/1"] * 3
    error = project.invoke("rollback", "--stage=test", "--json", "--to=9")
    assert error.returncode == 1 and json.loads(error.stdout)["exit_code"] == 1
    assert "release 9" in json.loads(error.stdout)["error"]


def test_verbose_shows_each_remote_command_masked_and_quiet_only_the_end(project):
    secret = "s3cr3t-over-ssh-42"
    (project.root / "templates" / "app.env.j2").write_text("TOKEN={{ env('SSH_APP_TOKEN') }}\n")
    project.set(hooks={"after_switch": [{"command": "echo switched"}]})
    verbose = run(project, "deploy", "--stage=test", "-v", env={"SSH_APP_TOKEN": secret})
    assert "$ set -e" in verbose.stdout and "mv -T" in verbose.stdout and "echo switched" in verbose.stdout
    assert secret not in verbose.stdout + verbose.stderr
    assert all(secret in project.read(i, "current/app.env") for i in range(3))  # it was really deployed
    quiet = run(project, "deploy", "--stage=test", "--quiet", env={"SSH_APP_TOKEN": secret})
    lines = [line for line in quiet.stdout.splitlines() if line.strip()]
    assert lines[-1].startswith("deploy of release 2 to test: done in"), lines
    assert not any("upload" in line or "$ " in line or "after_switch" in line for line in lines), lines
    assert [project.current(i) for i in range(3)] == ["releases/2"] * 3
    plain = run(project, "deploy", "--stage=test", env={"SSH_APP_TOKEN": secret})
    assert "upload" in plain.stdout and "$ set -e" not in plain.stdout


# -- ssh.command_timeout is a silence timeout --------------------------------------------------

TICKS = (
    "start=$(date +%s%N); end=$(( $(date +%s) + 5 )); "
    "while [ $(date +%s) -lt $end ]; do echo tick; sleep 0.2; done; "
    'echo $start $(date +%s%N) > "$DEPLOYER_DEPLOY_TO/ticked"'
)


def test_command_timeout_over_ssh_stops_silent_commands_not_talkative_ones(project):
    timeout = 3
    project.set(ssh={"command_timeout": timeout}, hooks={"before_switch": [{"command": TICKS}]})
    run(project, "deploy", "--stage=test")  # a hook that runs past the timeout but keeps talking
    for index in range(3):
        start, end = map(int, project.read(index, "ticked").split())
        assert end - start > timeout * 1e9  # it did run longer than ssh.command_timeout
        assert project.current(index) == "releases/1"
    project.set(hooks={"before_switch": [{"command": project.barrier_hook("silent", ticking=False)}]})
    try:
        result = project.invoke("deploy", "--stage=test")
    finally:
        project.release_barrier("silent")
    line = one_line_error(result, 1)
    assert f"gave no output for {timeout}s (ssh.command_timeout)" in line and "release 2 removed" in line, (
        line
    )
    for index in range(3):
        assert project.reached("silent", [index])  # the hook really ran, silently
        assert project.current(index) == "releases/1" and project.release_dirs(index) == [1]
        assert not project.lock_held(index)
