"""Webhook notifications against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import deployer
from deployer.errors import HookFailed


@pytest.fixture
def receiver():
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(
                {"path": self.path, "body": json.loads(body), "agent": self.headers["User-Agent"]}
            )
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()


def test_start_success_failure_and_rollback_are_sent(local_project, receiver):
    url, received = receiver
    p = local_project
    p.set(
        notify=[
            {"url": url + "/generic"},
            {"url": url + "/slack", "format": "slack", "events": ["success", "failure"]},
        ]
    )
    p.deploy()
    p.deploy()
    generic = [r["body"] for r in received if r["path"] == "/generic"]
    assert [g["event"] for g in generic] == ["start", "success", "start", "success"]
    assert (
        generic[-1]["release"] == 2 and generic[-1]["stage"] == "test" and generic[-1]["command"] == "deploy"
    )
    assert isinstance(generic[-1]["duration"], (int, float)) and generic[-1]["by"]
    assert {r["agent"] for r in received} == {f"sternway/{deployer.__version__}"}
    slack = [r["body"] for r in received if r["path"] == "/slack"]
    assert len(slack) == 2 and "deploy success on test: release 2" in slack[-1]["text"]
    received.clear()
    p.rollback()
    assert [r["body"]["event"] for r in received if r["path"] == "/generic"] == ["start", "rollback"]
    received.clear()
    (p.root / "app" / "fix.txt").write_text("a new artifact: the rolled-back one is refused\n")
    p.set(hooks={"before_switch": [{"command": "exit 3"}]})
    with pytest.raises(HookFailed):
        p.deploy()
    failure = [
        r["body"]
        for r in received
        if r["body"].get("event") == "failure" or "failure" in r["body"].get("text", "")
    ]
    assert len(failure) == 2 and "exit 3" in failure[0]["message"]


def test_a_failing_webhook_only_warns(local_project):
    p = local_project
    p.set(notify=[{"url": "http://127.0.0.1:9/hook?token=SECRET"}])
    summary = p.deploy()
    assert summary.release == 1
    out = "".join(p.output)
    assert "warning: notify http://127.0.0.1:" in out and "SECRET" not in out
