"""A real HTTP server on 127.0.0.1 (ephemeral port, own thread) that serves canned replies and
misbehaves on demand: slow answers, error statuses, truncated bodies, dropped connections.

Tests give it a handler (request -> Reply) and may `inject` replies that take precedence for the
next matching requests, e.g. "the first request for page 2 gets a 503".
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds to wait before answering (to trip the client's read timeout)
    drop: bool = False  # close the connection without sending anything
    cut_at: int | None = None  # announce the full Content-Length, send this many body bytes, hang up


@dataclass(frozen=True)
class Seen:
    """One request as the server received it."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]
    at: float  # time.monotonic() on arrival


Handler = Callable[[Seen], Reply]


class FakeServer:
    def __init__(self, handler: Handler | None = None) -> None:
        self.handler: Handler = handler or (lambda seen: Reply(404, b"no handler"))
        self.requests: list[Seen] = []
        self._injected: deque[tuple[Callable[[Seen], bool], Reply]] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        # A client that hangs up on a slow reply makes the handler's write fail; that is expected here.
        self._httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def inject(self, *replies: Reply, when: Callable[[Seen], bool] = lambda seen: True) -> None:
        """Serve `replies`, in order, to the next requests matching `when`, before the handler."""
        with self._lock:
            self._injected.extend((when, r) for r in replies)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers still sleeping on a slow reply
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _reply_for(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            for item in self._injected:
                if item[0](seen):
                    self._injected.remove(item)
                    return item[1]
        return self.handler(seen)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            # HTTP/1.0: one request per connection, so a dropped connection can never be a pooled one
            # that a later request reuses; that keeps request counts in the tests deterministic.
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
                seen = Seen(
                    parts.path, query, {k.lower(): v for k, v in self.headers.items()}, time.monotonic()
                )
                reply = server._reply_for(seen)
                if reply.delay and server._stopping.wait(reply.delay):
                    return
                if reply.drop:
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                body = reply.body if reply.cut_at is None else reply.body[: reply.cut_at]
                try:
                    self.wfile.write(body)
                    self.wfile.flush()
                except OSError:
                    pass  # the client gave up first (timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return _Handler
