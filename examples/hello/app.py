"""A tiny HTTP app: serves public/ and /up (health) from the release it runs in."""

import http.server
import os
import sys

PORT = int(os.environ.get("PORT", "8000"))


class Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=os.path.join(os.path.dirname(__file__), "public"), **kwargs)

    def do_GET(self):
        if self.path == "/up":
            # A release that ships a BROKEN file reports itself unhealthy: handy to try
            # health-gated rollouts (see the README).
            broken = os.path.exists(os.path.join(os.path.dirname(__file__), "BROKEN"))
            self.send_response(500 if broken else 200)
            self.end_headers()
            self.wfile.write(b"broken\n" if broken else b"ok\n")
            return
        super().do_GET()


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
    sys.exit(0)
