"""The traps recipe A avoids, shown with the real parts (Debian bookworm's gunicorn 20.1),
and a control showing that the load generator does see failed requests when there are some.

Each trap test switches ``current`` itself with ``mv -T`` (as the deployer does) and sends
gunicorn the signal a naive ``after_switch`` hook would send."""

from __future__ import annotations

import time

import pytest
from load import Load
from test_stack_gunicorn import deploy_ok

pytestmark = [pytest.mark.stack, pytest.mark.ssh]

APP = """import os
CODE = {code!r}
def application(environ, start_response):
    body = ("code %s cwd %s" % (CODE, os.getcwd())).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"""


def two_releases(host, second: str = APP.format(code="2")) -> None:
    host.sh(
        "mkdir -p /srv/trap/releases/1 /srv/trap/releases/2 && ln -sfn releases/1 /srv/trap/current",
        user="root",
    )
    host.put("/srv/trap/releases/1/app.py", APP.format(code="1"))
    host.put("/srv/trap/releases/2/app.py", second)
    host.sh("chown -R deploy: /srv/trap", user="root")


def start(host, port: int, env: str = "", options: str = "") -> str:
    """Start gunicorn from a shell in current/ (``env``: a command prefix); returns its pid file."""
    pid = f"/srv/trap/{port}.pid"
    host.sh(
        f"cd /srv/trap/current && {env} gunicorn --daemon {options} --pid {pid} -b 127.0.0.1:{port} -w 2 app:application"
    )
    wait_answer(host, port, "code 1")
    return pid


def wait_answer(host, port: int, text: str, timeout: float = 60) -> str:
    def answer():
        got = host.sh(f"curl -s --max-time 5 http://127.0.0.1:{port}/ || true")
        return got if text in got else None

    deadline = time.monotonic() + timeout
    while True:
        got = answer()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer with {text!r} on {port}")
        time.sleep(0.1)


def switch_and_hup(host, pid: str) -> None:
    host.sh(
        f"ln -s releases/2 /srv/trap/tmp && mv -T /srv/trap/tmp /srv/trap/current && kill -HUP $(cat {pid})"
    )


def new_workers(host, pid: str, before: set[str]) -> None:
    """After HUP: wait until every worker is a new one (their pids all changed)."""

    def workers() -> set[str]:
        return set(host.sh(f"pgrep -P $(cat {pid}) || true").split())

    deadline = time.monotonic() + 60
    while not (workers() and not workers() & before):
        assert time.monotonic() < deadline, "gunicorn never replaced its workers"
        time.sleep(0.1)


def test_hup_started_without_pwd_keeps_serving_the_old_release(web_hosts, web_image):
    """systemd's WorkingDirectory= sets no $PWD: gunicorn 20.1 records the resolved
    releases/1 as its directory and goes back there on every reload."""
    host = web_hosts[0]
    two_releases(host)
    pid = start(host, 8101, env="env -u PWD")
    before = set(host.sh(f"pgrep -P $(cat {pid})").split())
    switch_and_hup(host, pid)
    new_workers(host, pid, before)
    assert host.sh("curl -s http://127.0.0.1:8101/") == "code 1 cwd /srv/trap/releases/1"


def test_hup_started_from_a_shell_in_current_follows_but_preload_ignores_it(web_hosts, web_image):
    """From a shell (``$PWD`` is .../current) a HUP does load release 2; with --preload the
    master imported the code once, so new workers run release 1's code in release 2's dir."""
    host = web_hosts[0]
    two_releases(host)
    plain, preload = start(host, 8102), start(host, 8103, options="--preload")
    workers = {p: set(host.sh(f"pgrep -P $(cat {p})").split()) for p in (plain, preload)}
    switch_and_hup(host, plain)
    host.sh(f"kill -HUP $(cat {preload})")
    for p in (plain, preload):
        new_workers(host, p, workers[p])
    assert host.sh("curl -s http://127.0.0.1:8102/") == "code 2 cwd /srv/trap/releases/2"
    assert host.sh("curl -s http://127.0.0.1:8103/") == "code 1 cwd /srv/trap/releases/2"


def test_hup_into_a_release_that_fails_to_import_stops_the_whole_server(web_hosts, web_image):
    """New workers that cannot import the app make the master exit ("Worker failed to
    boot"), old workers included: a HUP-based deploy of a broken release is an outage."""
    host = web_hosts[0]
    two_releases(host, second="raise RuntimeError('release 2 is broken')\n")
    pid = start(host, 8104)
    master = host.sh(f"cat {pid}").strip()
    switch_and_hup(host, pid)
    deadline = time.monotonic() + 60
    while host.sh(f"kill -0 {master} 2>/dev/null && echo alive || true").strip():
        assert time.monotonic() < deadline, "the master survived"
        time.sleep(0.1)
    assert host.sh("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8104/ || true") == "000"


def test_the_load_generator_sees_a_naive_restart(gunicorn_app):
    """Control: stopping the live gunicorn and then starting it again (a plain restart hook)
    leaves nginx with nothing to connect to for a moment; the load records those 502s."""
    deploy_ok(gunicorn_app)
    host = gunicorn_app.hosts[0]
    with Load([host.http_port]) as load:
        host.sh(
            "cd /srv/hello/current && kill -TERM $(cat ../../shared/run/1.pid) && "
            "while [ -e ../../shared/run/1.sock ]; do sleep 0.05; done && rm -f ../../shared/run/1.pid"
        )
        load.wait(lambda: load.failures(), "a failed request while nothing serves")
        host.sh("cd /srv/hello/current && bin/app start")
        restarted = time.monotonic()
        load.settle(restarted)
    load.report("control: naive stop + start")
    assert load.failures() and {s.status for s in load.failures()} <= {502}
    assert load.after(restarted) == {"release 1"}
