"""Capture: one thread per camera reads frames, throttles them to ``detect_fps`` and hands them on.

Live sources (RTSP, USB) and realtime files drop the oldest queued frame when detection is behind
(counted as ``frames_dropped``); non-realtime files wait instead, so nothing is lost. A live source
that fails or ends is reopened with exponential backoff; a file ends, or loops when configured
(a looping file that vanishes is retried with the same backoff, like a live stream).

A network stream can also stall: the server keeps the connection open and sends nothing. FFmpeg's
readers would then block for 30 s a read, so network sources are opened with open and read
timeouts and a read that gives up is the camera going ``stalled`` (logged, counted, reopened).
Decoding is the sources' business (``edge_daemon.sources``): the camera asks for the next frame's
media time, and for the image only of the frames it hands on. A stall is measured from the source's
last packet, not its last frame: a source decoding only keyframes delivers a frame a keyframe
interval, and a stream that ends or fails long after its last frame is no stall.

An idle scene (``cameras.idle_keyframes_after_s``): the camera's tracking thread tells ``IdleScene``
after every frame whether the scene was quiet (no motion, no live track); once it has been quiet for
that long, the source decodes only keyframes, until the tracking thread sees something move in one
(docs/guide/cameras.md#idle-cameras-decode-only-keyframes). Counted per camera:
``frames_keyframe_only`` (frames decoded so), ``keyframe_only_periods`` and ``keyframe_only_ms``.
"""

from __future__ import annotations

import base64
import os
import queue
import socket
import threading
import time
from urllib.parse import unquote, urlsplit

from edge_daemon.config import CameraConfig
from edge_daemon.counters import StageCounters
from edge_daemon.logs import get_logger
from edge_daemon.messages import Frame, FrameQueue, StreamEnded
from edge_daemon.sources import SourceError, VideoSource, decoder_for, is_network, open_source, read_timeout_s

log = get_logger(__name__)


class IdleScene:
    """Whether a camera's scene has been quiet (no motion, no live track) for ``after_s`` seconds of
    video: told by its tracking thread after every frame, asked by its source at every packet."""

    def __init__(self, after_s: float):
        self.after_s = after_s
        self._quiet_since: float | None = None
        self._latest = 0.0

    def observe(self, stream_time: float, quiet: bool) -> None:
        self._latest = stream_time
        if not quiet:
            self._quiet_since = None
        elif self._quiet_since is None:
            self._quiet_since = stream_time

    def keyframes_only(self) -> bool:
        since = self._quiet_since  # read once: the tracking thread may clear it meanwhile
        return self.after_s > 0 and since is not None and self._latest - since >= self.after_s


class Camera(threading.Thread):
    """Owns one video source and the bounded queue of frames it feeds to detection."""

    def __init__(self, config: CameraConfig, stop: threading.Event):
        super().__init__(name=f"capture-{config.name}", daemon=True)
        self.config = config
        self.frames = FrameQueue(maxsize=config.queue_size)
        self.counters = StageCounters()
        self.state = "starting"
        self.streaming_since: float | None = None  # monotonic time of the last successful open
        self.last_error: str | None = None
        self._stopping = stop
        self._drop_when_full = not config.is_file or config.realtime
        self._seq = 0
        self._stream_time = 0.0
        # Only a camera that may lose frames decodes keyframes only: a realtime = false file loses nothing.
        self.idle = IdleScene(config.idle_keyframes_after_s if self._drop_when_full else 0.0)
        self._keyframes_only_at: float | None = None  # monotonic time of the last keyframe-only frame
        if self.idle.after_s and decoder_for(config) != "pyav":
            log.warning("idle_keyframes_after_s needs decoder 'pyav': this camera decodes every frame when idle",
                        camera=config.name, decoder=decoder_for(config))

    def run(self) -> None:
        reason = "stopped"
        delay = self.config.reconnect_initial_s
        once = self.config.is_file and not self.config.loop  # a plain file: read it once, never retry
        try:
            while not self._stopping.is_set():
                source = self._open()
                if source is not None:
                    delay = self.config.reconnect_initial_s  # a successful open resets the backoff
                    outcome = self._stream(source)
                    source.release()
                    if self._stopping.is_set():
                        break
                    if once:
                        reason = "failed" if outcome == "no frame" else "ended"
                        break
                    if self.config.is_file and outcome == "ended":
                        continue  # loop the file
                    self.last_error = OUTCOMES[outcome]
                elif once:
                    reason = "failed"
                    break
                if self.state != "stalled":  # a stalled camera says so until it streams again
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

    def _open(self) -> VideoSource | None:
        url = self.config.url
        if self.config.is_file and not os.path.isfile(url):
            self.last_error = f"file not found: {url}"
        else:
            try:
                source = open_source(self.config, self._keyframes_only)
            except SourceError as exc:
                self.last_error = f"cannot open {redact(url)}: {exc}"
                if url.startswith("rtsp://"):
                    self.last_error += f"; {diagnose_rtsp(url, read_timeout_s(self.config))}"
            else:
                self.state = "streaming"
                self.streaming_since = time.monotonic()
                self.last_error = None
                log.info("camera opened", camera=self.config.name, source=redact(url), decoder=source.decoder,
                         width=source.width, height=source.height, fps=round(source.native_fps, 2))
                return source
        if self.state != "stalled":  # a stalled camera says so until it streams again
            self.state = "failed"
        log.error("camera cannot open", camera=self.config.name, error=self.last_error)
        return None

    def _stream(self, source: VideoSource) -> str:
        """Read until the source ends, stalls, fails or we are stopped; returns which (see OUTCOMES)."""
        period = 1.0 / self.config.detect_fps
        started = time.monotonic()
        # Stream time goes on across loops and reconnects, so motion is predicted over video time
        # (also when a file is read faster than real time) and never runs backwards.
        stream_start = self._stream_time + period
        next_due = 0.0
        index = 0
        try:
            while not self._stopping.is_set():
                file_time = source.grab()
                if file_time is None:
                    silent_s = time.monotonic() - source.last_read_at
                    if is_network(self.config.url) and silent_s >= read_timeout_s(self.config):
                        self._stalled(silent_s)
                        return "stalled"
                    return "ended" if index else "no frame"
                self._count_keyframes_only(source.keyframes_only)
                # Media time: position in the file, or the wall clock for live sources.
                media_time = file_time if self.config.is_file else time.monotonic() - started
                index += 1
                self.counters.add("frames_read")
                if self.config.is_file and self.config.realtime:
                    ahead = media_time - (time.monotonic() - started)
                    if ahead > 0 and self._stopping.wait(ahead):
                        break
                if media_time + 1e-6 < next_due:
                    continue
                next_due = max(next_due + period, media_time)
                decoded = source.retrieve()  # converted later, only as far as the frame's stages need
                if decoded is None:
                    self.counters.add("frames_bad")
                    continue
                self._seq += 1
                self._stream_time = stream_start + media_time
                self._hand_on(Frame(self.config.name, self._seq, decoded, time.time(), self._stream_time))
            return "stopped"
        finally:
            self._count_keyframes_only(False)

    def _keyframes_only(self) -> bool:
        """Asked by the source at every packet. A stopping camera decodes every frame again, so its
        next frame comes at once and it stops, not a keyframe interval later."""
        return self.idle.keyframes_only() and not self._stopping.is_set()

    def _count_keyframes_only(self, active: bool) -> None:
        """Counts a frame of keyframe-only decoding and the time spent so; logs when it begins and ends."""
        now = time.monotonic()
        if active:
            self.counters.add("frames_keyframe_only")
            if self._keyframes_only_at is None:
                self.counters.add("keyframe_only_periods")
                log.info("camera idle: decoding keyframes only", camera=self.config.name, after_s=self.idle.after_s)
            else:
                self.counters.add("keyframe_only_ms", round(1000 * (now - self._keyframes_only_at)))
            self._keyframes_only_at = now
        elif self._keyframes_only_at is not None:
            self.counters.add("keyframe_only_ms", round(1000 * (now - self._keyframes_only_at)))
            self._keyframes_only_at = None
            log.info("camera active: decoding every frame again", camera=self.config.name)

    def _stalled(self, silent_s: float) -> None:
        self.state = "stalled"
        self.counters.add("stalls")
        log.warning("camera stalled: connection open but no frame", camera=self.config.name, silent_s=round(silent_s, 1))

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


OUTCOMES = {
    "ended": "stream ended or failed",
    "no frame": "opened but no frame could be read",
    "stalled": "stalled: no frame within the stall timeout",
    "stopped": "stopped",
}


def diagnose_rtsp(url: str, timeout_s: float) -> str:
    """Why an RTSP source does not open, in words: ask the server for the stream (DESCRIBE) the
    way a camera client starts, and read its answer (OpenCV's reader does not say)."""
    parts = urlsplit(url)
    host, port = parts.hostname or "", parts.port or 554
    target = f"rtsp://{host}:{port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")
    request = f"DESCRIBE {target} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n"
    if parts.username is not None:
        token = base64.b64encode(f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()).decode()
        request += f"Authorization: Basic {token}\r\n"
    try:
        with socket.create_connection((host, port), timeout=timeout_s) as connection:
            connection.sendall((request + "\r\n").encode())
            status = connection.recv(1024).split(b"\r\n", 1)[0].decode("latin-1")
    except socket.timeout:
        return f"no answer from {host}:{port} within {timeout_s:.0f} s"
    except OSError as exc:
        return f"cannot connect to {host}:{port}: {exc.strerror or exc}"
    code = status.split(" ", 2)[1] if status.count(" ") >= 1 else ""
    if code == "401":
        return "the server refused the credentials" if parts.username else "the server wants credentials (user:password@ in the URL)"
    if code == "404":
        return f"the server has no stream at {parts.path or '/'}"
    return f"the server answered {status!r}" if status else "the server closed the connection"


def redact(url: str) -> str:
    """Hide credentials in ``rtsp://user:password@host`` URLs before logging them."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url
