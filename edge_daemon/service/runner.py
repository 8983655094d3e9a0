"""The daemon as a process: ``edge-daemon run`` and ``edge-daemon demo`` hand it the settings.

``DaemonRunner`` builds the ``Daemon``, its ``ServiceMonitor`` (systemd) and, with
``service.metrics_port``, the HTTP port; ``run`` installs the signal handlers (SIGINT/SIGTERM stop,
SIGHUP reloads the gallery), runs the main loop (reloads, monitor ticks, the periodic MQTT stats)
until stopped or until every camera has ended, then shuts down in order: systemd told, the pipeline
drained, the HTTP port closed. This is the one module of the service layer that holds the daemon
itself; the others read its status snapshots.
"""

from __future__ import annotations

import signal
import threading
import time
from functools import partial

from edge_daemon.comms.gallery_sync import publish_gallery
from edge_daemon.config import Settings
from edge_daemon.detectors import create_detector
from edge_daemon.embedders import ProcessEmbedder, create_embedder
from edge_daemon.history import reprocess
from edge_daemon.logs import get_logger
from edge_daemon.pipeline.daemon import Daemon
from edge_daemon.pipeline.status import DaemonStatus
from edge_daemon.service.gallery_share import GalleryPublisher
from edge_daemon.service.health import ServiceMonitor
from edge_daemon.service.http import HttpServer
from edge_daemon.service.metrics import DaemonCollector
from edge_daemon.service.review import ReviewContext, ReviewPages
from edge_daemon.service.review.photos import PhotoFaces
from edge_daemon.service.systemd import SystemdNotifier

log = get_logger(__name__)

TICK_S = 0.2  # how often the main loop looks at reloads, systemd and the cameras


class DaemonRunner:
    def __init__(self, settings: Settings):
        """Builds everything (the models load here); raises ValueError for settings it cannot run."""
        self.settings = settings
        self.daemon = Daemon(settings)
        service = settings.service
        self.monitor = ServiceMonitor(self.daemon.status, SystemdNotifier(), service.stuck_after_s, service.ready_timeout_s)
        self.photo_faces: PhotoFaces | None = None  # the people page's models, made on its first photo
        self.gallery_publisher: GalleryPublisher | None = None
        self.http = self._http_server() if service.metrics_port else None
        self._reload_requested = threading.Event()
        self._stop_signal: str | None = None  # the signal that asked to stop, logged by the main loop

    def _http_server(self) -> HttpServer:
        daemon, settings = self.daemon, self.settings
        review = None
        if settings.review.enabled:
            context = ReviewContext(
                history=daemon.history,
                groups=daemon.groups,
                gallery_path=settings.gallery.path,
                embedder_version=daemon.embedder.version,
                reload_gallery=daemon.reload_gallery,
                cameras=tuple(camera.name for camera in settings.cameras),
                photo_faces=self._photo_faces(),
                share_gallery=self._gallery_sharing(),
                camera_views=daemon.camera_views.snapshot,
                min_face_px=settings.detector.min_face_px,
                matcher=daemon.matcher,
                reprocess=None if daemon.history is None else partial(
                    reprocess, daemon.history, daemon.matcher, daemon.embedder.version
                ),
            )
            review = ReviewPages(context, settings.review.token_file)
        collector = DaemonCollector(daemon.status, lambda: self.monitor.fps)
        return HttpServer(
            settings.service.metrics_host, settings.service.metrics_port, collector, self.monitor.health, review,
            max_upload_bytes=round(settings.review.max_upload_mb * (1 << 20)),
        )

    def _photo_faces(self) -> PhotoFaces:
        settings, embedder = self.settings, self.daemon.embedder
        self.photo_faces = PhotoFaces(
            new_detector=partial(create_detector, settings.detector, threads=settings.threads.model_process),
            shared_embedder=embedder if isinstance(embedder, ProcessEmbedder) else None,
            new_embedder=partial(create_embedder, settings.embedder, threads=settings.threads.model_process),
        )
        return self.photo_faces

    def _gallery_sharing(self):
        """What hands a gallery the pages changed on to the fleet: with gallery.sync = "mqtt" the
        box takes its gallery from the broker, so a change made here is published there (else the
        box's next adoption would undo it); without, the gallery is the box's own."""
        sync, settings = self.daemon.gallery_sync, self.settings
        if sync is None:
            return None
        self.gallery_publisher = GalleryPublisher(partial(
            publish_gallery, settings.gallery.path, settings.mqtt, settings.mqtt.prefix, settings.gallery.sync_chunk_bytes
        ))

        def share() -> None:
            if self.daemon.matcher.gallery is not None:
                sync.made_here(self.daemon.matcher.gallery)
            self.gallery_publisher.request()

        return share

    def start(self) -> None:
        if self.http is not None:
            self.http.start()
        self.daemon.start()

    def request_stop(self) -> None:
        self.daemon.request_stop()

    def request_reload(self) -> None:
        self._reload_requested.set()

    def run(self) -> int:
        """Run until stopped or until every camera has finished. Returns the exit code: 0, or 1 when
        no camera could be read."""
        self._install_signal_handlers()
        self.start()
        stats_interval = self.settings.mqtt.stats_interval_s
        last_stats = time.monotonic()
        try:
            while not self.daemon.stopping.is_set():
                if self._reload_requested.wait(TICK_S):
                    self._reload_requested.clear()
                    self.daemon.reload_gallery()
                self.monitor.tick()
                if stats_interval and time.monotonic() - last_stats >= stats_interval:
                    last_stats = time.monotonic()
                    self.daemon.publish_stats()
                if not self.daemon.any_camera_running():
                    break
            if self._stop_signal is not None:
                log.info("stop requested", signal=self._stop_signal)
        finally:
            final = self.shutdown()
        failed = [camera.name for camera in final.cameras if camera.state == "failed"]
        if failed and len(failed) == len(final.cameras):
            log.error("no camera could be read", cameras=failed)
            return 1
        return 0

    def shutdown(self) -> DaemonStatus:
        """Tell systemd, drain the pipeline, close the HTTP port. Returns the daemon's final status."""
        self.monitor.stopping()
        final = self.daemon.shutdown()
        if self.http is not None:
            self.http.close()
        for part in (self.gallery_publisher, self.photo_faces):
            if part is not None:
                part.close()
        return final

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # tests and benchmarks drive the daemon from other threads

        def on_stop(signum, frame):
            # No logging here: the handler runs in the main thread between two of its bytecodes, maybe
            # while that thread holds the log's write lock, and would wait for it forever.
            self._stop_signal = signal.Signals(signum).name
            self.request_stop()

        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGHUP, lambda signum, frame: self.request_reload())
