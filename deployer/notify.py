"""Webhook notifications (Slack/Mattermost-compatible or generic JSON) on start, success,
failure, rollback and promote. A webhook that fails is a warning, never a failed deploy.
Webhook URLs often carry a secret, so only their scheme and host are ever printed."""

from __future__ import annotations

import functools
import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from . import USER_AGENT
from .config import Config
from .localstate import whoami

F = TypeVar("F", bound=Callable)
RESPONSE_LIMIT = 64 * 1024


@dataclass
class Notifier:
    config: Config
    reporter: Any
    command: str
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = time.monotonic()

    def send(
        self, event: str, release: int | None = None, revision: str | None = None, message: str = ""
    ) -> None:
        for hook in self.config.notify:
            if event in hook.events:
                self._post(hook.url, self.payload(hook.format, event, release, revision, message))

    def payload(self, fmt: str, event: str, release, revision, message: str) -> dict:
        duration = round(time.monotonic() - self.started, 2)
        data = {
            "event": event,
            "command": self.command,
            "application": self.config.application,
            "stage": self.config.stage,
            "release": release,
            "revision": revision,
            "by": whoami(),
            "duration": duration,
            "hosts": [h.name for h in self.config.hosts],
            "message": message,
        }
        if fmt != "slack":
            return data
        icon = {
            "start": ":rocket:",
            "success": ":white_check_mark:",
            "failure": ":x:",
            "rollback": ":rewind:",
            "promote": ":arrow_up:",
        }[event]
        what = f"release {release}" if release is not None else "a release"
        text = f"{icon} {self.config.application} {self.command} {event} on {self.config.stage}: {what}"
        text += f" by {data['by']} ({duration}s)" + (f" {message}" if message else "")
        return {"text": text}

    def _post(self, url: str, payload: dict) -> None:
        import urllib.request
        from urllib.parse import urlsplit

        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read(RESPONSE_LIMIT)  # what a webhook answers is not ours to keep
        except Exception as exc:
            where = urlsplit(url)
            reason = getattr(exc, "reason", None) or exc
            self.reporter.line(
                f"warning: notify {where.scheme}://{where.hostname}: {reason} (the deploy is not affected)"
            )


def notifying(command: str, success_event: str, config_arg: str = "config") -> Callable[[F], F]:
    """Wrap a deploy-like recipe (it takes ``reporter`` and ``dry_run``, and returns a
    summary) so it runs between start and success/failure notifications; the webhooks
    come from its ``config_arg`` argument (the stage that changes)."""

    def wrap(recipe: F) -> F:
        signature = inspect.signature(recipe)

        @functools.wraps(recipe)
        def run(*args, **kwargs):
            given = signature.bind(*args, **kwargs)
            given.apply_defaults()
            values = given.arguments
            return notified(
                values[config_arg], values["reporter"], command, success_event,
                lambda: recipe(*args, **kwargs), values["dry_run"],
            )  # fmt: skip

        return run  # type: ignore[return-value]

    return wrap


def notified(config: Config, reporter: Any, command: str, success_event: str, run, dry_run: bool = False):
    """Run a deploy-like ``run()`` between start and success/failure notifications."""
    from .errors import DeployerError

    if dry_run or not config.notify:
        return run()
    notifier = Notifier(config, reporter, command)
    notifier.send("start")
    try:
        summary = run()
    except DeployerError as exc:
        notifier.send("failure", message=reporter.secrets.mask(exc.message))
        raise
    notifier.send(success_event, release=summary.release, revision=summary.revision)
    return summary
