"""Capture: one thread per camera reads frames, throttles them to ``detect_fps`` and hands them on.

Live sources (RTSP, USB) and realtime files drop the oldest queued frame when detection is behind
(counted as ``frames_dropped``); non-realtime files wait instead, so nothing is lost. A live source
that fails or ends is reopened with exponential backoff; a file ends, or loops when configured
(a looping file that vanishes is retried with the same backoff, like a live stream).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass

import cv2

from edge_daemon.config import CameraConfig
from edge_daemon.logs import get_logger
from edge_daemon.messages import Frame, StageCounters

log = get_logger(__name__)


@dataclass(frozen=True)
class StreamEnded:
    """Last message of a camera's frame queue: the capture thread has stopped."""

    camera: str
    reason: str


def open_capture(url: str) -> cv2.VideoCapture:
    if url.startswith("usb:"):
        return cv2.VideoCapture(int(url[4:]))
    return cv2.VideoCapture(url, cv2.CAP_FFMPEG)


class Camera(threading.Thread):
    """Owns one video source and the bounded queue of frames it feeds to detection."""

    def __init__(self, config: CameraConfig, stop: threading.Event):
        super().__init__(name=f"capture-{config.name}", daemon=True)
        self.config = config
        self.frames: queue.Queue[Frame | StreamEnded] = queue.Queue(maxsize=config.queue_size)
        self.counters = StageCounters()
        self.state = "starting"
        self.streaming_since: float | None = None  # monotonic time of the last successful open
        self.last_error: str | None = None
        self._stopping = stop
        self._drop_when_full = not config.is_file or config.realtime
        self._seq = 0

    def run(self) -> None:
        reason = "stopped"
        delay = self.config.reconnect_initial_s
        once = self.config.is_file and not self.config.loop  # a plain file: read it once, never retry
        try:
            while not self._stopping.is_set():
                capture = self._open()
                if capture is not None:
                    delay = self.config.reconnect_initial_s  # a successful open resets the backoff
                    read_any = self._stream(capture)
                    capture.release()
                    if self._stopping.is_set():
                        break
                    if once:
                        reason = "ended" if read_any else "failed"
                        break
                    if self.config.is_file and read_any:
                        continue  # loop the file
                    self.last_error = "stream ended or failed" if read_any else "opened but no frame could be read"
                elif once:
                    reason = "failed"
                    break
                self.state = "reconnecting"
                self.counters.add("reconnects")
                log.warning("camera reconnecting", camera=self.config.name, delay_s=delay, error=self.last_error)
                if self._stopping.wait(delay):
                    break
                delay = min(delay * 2, self.config.reconnect_max_s)
        finally:
            self.state = reason
            log.info("camera stopped", camera=self.config.name, reason=reason, **self.counters.values)
            self.frames.put(StreamEnded(self.config.name, reason))  # blocks until detection takes it

    def _open(self) -> cv2.VideoCapture | None:
        url = self.config.url
        if self.config.is_file and not os.path.isfile(url):
            self.last_error = f"file not found: {url}"
        else:
            capture = open_capture(url)
            if capture.isOpened():
                self.state = "streaming"
                self.streaming_since = time.monotonic()
                self.last_error = None
                log.info("camera opened", camera=self.config.name, source=_redact(url))
                return capture
            capture.release()
            self.last_error = f"cannot open {_redact(url)}"
        self.state = "failed"
        log.error("camera cannot open", camera=self.config.name, error=self.last_error)
        return None

    def _stream(self, capture: cv2.VideoCapture) -> bool:
        """Read until the source ends, fails or we are stopped. True if any frame was read."""
        native_fps = capture.get(cv2.CAP_PROP_FPS)
        if not (0 < native_fps < 1000):
            native_fps = 25.0
        period = 1.0 / self.config.detect_fps
        started = time.monotonic()
        next_due = 0.0
        index = 0
        while not self._stopping.is_set():
            if not capture.grab():
                return index > 0
            # Media time: position in the file, or the wall clock for live sources.
            media_time = index / native_fps if self.config.is_file else time.monotonic() - started
            index += 1
            self.counters.add("frames_read")
            if self.config.is_file and self.config.realtime:
                ahead = media_time - (time.monotonic() - started)
                if ahead > 0 and self._stopping.wait(ahead):
                    break
            if media_time + 1e-6 < next_due:
                continue
            next_due = max(next_due + period, media_time)
            ok, image = capture.retrieve()
            if not ok or image is None:
                self.counters.add("frames_bad")
                continue
            self._seq += 1
            self._hand_on(Frame(self.config.name, self._seq, image, time.time()))
        return index > 0

    def _hand_on(self, frame: Frame) -> None:
        if not self._drop_when_full:
            while not self._stopping.is_set():
                try:
                    self.frames.put(frame, timeout=0.1)
                    self.counters.add("frames_sent")
                    return
                except queue.Full:
                    continue
            return
        while True:
            try:
                self.frames.put_nowait(frame)
                self.counters.add("frames_sent")
                return
            except queue.Full:
                try:
                    self.frames.get_nowait()
                    self.counters.add("frames_dropped")
                except queue.Empty:
                    pass


def _redact(url: str) -> str:
    """Hide credentials in ``rtsp://user:password@host`` URLs before logging them."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
