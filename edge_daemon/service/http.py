"""The daemon's local HTTP port (``service.metrics_host``:``service.metrics_port``): ``/metrics``
(Prometheus text format), ``/healthz`` (200 healthy, 503 with the problems; ``status`` says
``degraded`` and why when a disk cannot be written, still 200) and, when
``review.enabled``, the review pages under ``/review``."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry

from edge_daemon.logs import get_logger
from edge_daemon.service.health import Health
from edge_daemon.service.metrics import DaemonCollector
from edge_daemon.service.review import Response, ReviewPages
from edge_daemon.service.review.forms import MULTIPART

log = get_logger(__name__)

MAX_FORM_BYTES = 64 * 1024  # a plain form; uploads (multipart) have review.max_upload_mb
DRAIN_CHUNK_BYTES = 1 << 16


class HttpServer:
    """Serves in its own thread from ``start`` to ``close``; ``port`` is the one bound (0 picks one)."""

    def __init__(
        self,
        host: str,
        port: int,
        collector: DaemonCollector,
        health: Callable[[], Health],
        review: ReviewPages | None,
        max_upload_bytes: int = MAX_FORM_BYTES,
    ):
        registry = CollectorRegistry()
        registry.register(collector)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                if review is None or not self.path.startswith("/review"):
                    return self._send(Response(404, b"not found\n", "text/plain"))
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    return self._send(Response(400, b"bad Content-Length\n", "text/plain"))
                upload = self.headers.get_content_type() == MULTIPART
                limit = max_upload_bytes if upload else MAX_FORM_BYTES
                if length < 0:
                    return self._send(Response(400, b"bad Content-Length\n", "text/plain"))
                if length > limit:
                    what = f"upload over the limit of {limit / (1 << 20):g} MiB (review.max_upload_mb)" if upload else (
                        f"form over the limit of {limit // 1024} KiB")
                    return self._refuse_unread(length, limit, Response(413, f"{what}: refused\n".encode(), "text/plain"))
                if upload and length > MAX_FORM_BYTES and not review.authorised(self.headers):
                    # nobody without the token makes the box hold an upload in memory
                    return self._refuse_unread(length, limit, Response(401, b"a valid review token is needed\n", "text/plain"))
                self._send(review.post(self.path, self.headers, self.rfile.read(length)))

            def _refuse_unread(self, length: int, limit: int, response: Response) -> None:
                """Answer without keeping the body: read and dropped (up to twice ``limit``, so that a
                client still sending it reads the answer rather than a reset connection), then closed."""
                remaining = min(length, 2 * limit)
                while remaining > 0:
                    chunk = self.rfile.read(min(DRAIN_CHUNK_BYTES, remaining))
                    if not chunk:
                        break
                    remaining -= len(chunk)
                self.close_connection = True
                self._send(response)

            def _send(self, response: Response) -> None:
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)

            def do_GET(self):  # noqa: N802 - http.server's name
                if review is not None and self.path.startswith("/review"):
                    return self._send(review.get(self.path, self.headers))
                if self.path == "/metrics":
                    body, status, content_type = generate_latest(registry), 200, CONTENT_TYPE_LATEST
                elif self.path == "/healthz":
                    report = health()
                    body = json.dumps(
                        {"healthy": report.healthy, "status": "degraded" if report.degraded else "ok",
                         "degraded": list(report.degraded), "problems": report.problems, "cameras": report.cameras,
                         "mqtt": report.mqtt}
                    ).encode()
                    status, content_type = (200 if report.healthy else 503), "application/json"
                else:
                    body, status, content_type = b"not found\n", 404, "text/plain"
                self._send(Response(status, body, content_type))

            def log_message(self, format, *args):  # requests are not worth a log line each
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="metrics", daemon=True)

    def start(self) -> None:
        self._thread.start()
        log.info("metrics listening", url=f"http://{self._server.server_address[0]}:{self.port}/metrics")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
