"""A local HTTP server that records every request and answers as a test tells it to.

Destination tests send real HTTP here instead of to the destination's API. It can answer any
status with any headers and body, answer slowly (past a client's timeout), and stop listening
(connections refused) and start again on the same port.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.time() when the request was read

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | Any = b'{"ok": true}'
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


Responder = Callable[[Recorded], Reply]


class Recorder:
    """`base_url`, `requests` (list of Recorded), `respond_with(...)`, `stop()`, `start()`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._responder: Responder = lambda _request: Reply()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def respond_with(self, responder: Responder | Reply) -> None:
        if isinstance(responder, Reply):
            reply = responder
            self._responder = lambda _request: reply
        else:
            self._responder = responder

    def start(self) -> None:
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                request = Recorded(
                    method=self.command,
                    path=url.path,
                    query=parse_qs(url.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    at=time.time(),
                )
                with recorder._lock:
                    recorder.requests.append(request)
                reply = recorder._responder(request)
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload = reply.body
                if not isinstance(payload, bytes | str):
                    payload = json.dumps(payload)
                data = payload.encode() if isinstance(payload, str) else payload
                try:
                    self.send_response(reply.status)
                    headers = {"content-type": "application/json", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): fine

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self.port = server.server_address[1]
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Close the listening socket: new connections are refused until `start()`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def clear(self) -> list[Recorded]:
        with self._lock:
            taken, self.requests = self.requests, []
        return taken

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Recorded]:
        """Wait until at least `count` requests arrived; return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            time.sleep(0.02)
        with self._lock:
            got = len(self.requests)
        raise AssertionError(f"expected {count} requests at {self.base_url}, got {got}")
