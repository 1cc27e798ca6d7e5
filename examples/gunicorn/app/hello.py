"""Recipe A's app: a plain WSGI application, served by Debian's gunicorn.

Every answer names the release this code was loaded from (read once, at import, from the
``.deployer-release.json`` the deployer writes into each release), so you can always
tell which release served a request.
"""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))


def _release() -> str:
    try:
        with open(os.path.join(HERE, ".deployer-release.json"), encoding="utf-8") as meta:
            return str(json.load(meta)["release"])
    except (OSError, ValueError, KeyError):
        return "unknown"


RELEASE = _release()


def application(environ, start_response):
    body = f"release {RELEASE}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
