"""Release-management features, each on the three real SSH hosts (state read on the hosts)."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from deployer.config import deep_merge

pytestmark = pytest.mark.ssh


def exact_state(p, index) -> str:
    d = p.deploy_to
    return p.sh(
        index,
        f"cd {d} 2>/dev/null && find . -printf '%y %p %l %s %m %T@\\n' | sort && "
        f"find . -type f -exec sha256sum {{}} + | sort || true",
    )


def run(p, *args, env=None):
    result = p.invoke(*args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_dry_runs_leave_every_host_byte_for_byte_unchanged(project):
    project.set(keep_releases=1)
    project.deploy()
    (project.root / "app" / "index.html").write_text("v2\n")
    project.deploy()
    before = [exact_state(project, i) for i in range(3)]
    for args in (("deploy",), ("rollback",), ("cleanup",)):
        result = run(project, *args, "--stage=test", "--dry-run")
        assert "dry run: nothing was changed" in result.stdout
    assert [exact_state(project, i) for i in range(3)] == before


def test_review_instances_on_ssh_hosts(project):
    base = project.base_stage()
    review = deep_merge(
        base, {"deploy_to": project.deploy_to + "-{instance}", "vars": {"greeting": "pr {instance}"}}
    )
    (project.root / "config" / "review.yml").write_text(yaml.safe_dump(review))
    run(project, "deploy", "--stage=review", "--instance=pr-1")
    run(project, "deploy", "--stage=review", "--instance=pr-2")
    for index in range(3):
        assert "GREETING=pr pr-2" in project.sh(index, f"cat {project.deploy_to}-pr-2/current/app.env")
    run(project, "destroy", "--stage=review", "--instance=pr-1", "--yes")
    for index in range(3):
        assert project.sh(index, f"ls -d {project.deploy_to}-pr-1 2>/dev/null || echo gone").strip() == "gone"
        assert project.sh(index, f"readlink {project.deploy_to}-pr-2/current").strip() == "releases/1"


def test_ref_pending_and_subset_logging_on_ssh_hosts(project):
    git = lambda *a: (
        subprocess.run(["git", *a], cwd=project.root, check=True, capture_output=True, text=True).stdout
    )
    ident = ["-c", "user.name=Ada", "-c", "user.email=ada@example.com"]
    git("init", "-q", "-b", "main")
    git("add", "-A")
    git(*ident, "commit", "-q", "-m", "first")
    (project.root / "app" / "index.html").write_text("second\n")
    git(*ident, "commit", "-q", "-am", "second")
    run(project, "deploy", "--stage=test", "--ref=HEAD~1")
    for index in range(3):
        assert project.read(index, "current/index.html") == "hello\n"
    pending = json.loads(run(project, "pending", "--stage=test", "--json").stdout)
    assert [c["subject"] for c in pending["commits"]] == ["second"]
    run(project, "deploy", "--stage=test", f"--hosts={project.hosts[0].name}")
    event = project.log(0)[-1]
    assert event["hosts"] == [project.hosts[0].name] and event["subject"] == "second"
    assert project.current(1) == "releases/1" and project.current(0) == "releases/2"


def test_notifications_for_an_ssh_deploy(project):
    received = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        project.set(notify=[{"url": f"http://127.0.0.1:{server.server_address[1]}/"}])
        project.deploy()
    finally:
        server.shutdown()
    assert [r["event"] for r in received] == ["start", "success"]
    assert received[-1]["release"] == 1 and sorted(received[-1]["hosts"]) == sorted(
        h.name for h in project.hosts
    )
