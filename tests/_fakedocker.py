"""A tiny fake Docker engine on a unix socket that cannot pull.

It answers ``_ping``, ``version``, the lists the plugin asks for (no
containers, a ``bridge`` network) and fails every pull.

It is a real HTTP peer for the Docker SDK and vdata's ping, so the test
plugin's fallback can be tested on a machine without Docker (offline or
rate-limited registries look like this to a client). Bounded: it serves
until ``stop()``, one thread per request, loopback only (a unix socket).
"""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

_VERSION = {
    "ApiVersion": "1.43",
    "MinAPIVersion": "1.12",
    "Version": "24.0.0-fake",
    "Os": "linux",
    "Arch": "amd64",
}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def _reply(self, status: int, body: object, content_type: str = "application/json") -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        path = self.path.split("?", 1)[0]
        # Strip the API version prefix (/v1.43/...).
        parts = path.split("/")
        if len(parts) > 2 and parts[1].startswith("v1."):
            path = "/" + "/".join(parts[2:])
        self.server.requests.append(f"{self.command} {path}")
        if path == "/_ping":
            self._reply(200, b"OK", "text/plain")
        elif path == "/version":
            self._reply(200, _VERSION)
        elif path == "/info":
            self._reply(200, {"ServerVersion": _VERSION["Version"], "OperatingSystem": "fake"})
        elif path == "/containers/json":
            self._reply(200, [])  # no container yet
        elif path == "/networks":
            self._reply(200, [{"Name": "bridge", "Id": "f" * 64, "Driver": "bridge"}])
        elif path == "/images/create":
            self._reply(500, {"message": "pull access denied: the fake engine is offline"})
        elif path.startswith("/images/") or path == "/containers/create":
            self._reply(404, {"message": "No such image"})
        else:
            self._reply(500, {"message": f"the fake engine does not do {path}"})

    do_GET = do_POST = do_DELETE = do_HEAD = _handle


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    requests: list[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # vdata's ping reads the status line and hangs up: a broken pipe
        # while the body is written is expected, not worth a traceback.
        pass


class FakeDockerEngine:
    """``with FakeDockerEngine(path) as engine``: ``engine.host`` is a DOCKER_HOST for it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._server = _Server(str(path), _Handler)
        self._server.requests = []
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"unix://{self.path}"

    @property
    def requests(self) -> list[str]:
        return list(self._server.requests)

    def __enter__(self) -> FakeDockerEngine:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.path.unlink(missing_ok=True)
