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

log = get_logger(__name__)

MAX_FORM_BYTES = 64 * 1024


class HttpServer:
    """Serves in its own thread from ``start`` to ``close``; ``port`` is the one bound (0 picks one)."""

    def __init__(
        self, host: str, port: int, collector: DaemonCollector, health: Callable[[], Health], review: ReviewPages | None
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
                if not 0 <= length <= MAX_FORM_BYTES:
                    return self._send(Response(413, b"form too large\n", "text/plain"))
                self._send(review.post(self.path, self.headers, self.rfile.read(length)))

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
