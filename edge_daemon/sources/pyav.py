"""PyAV's reader, decoding only as many frames as detection needs.

When the stream's rate is well above ``detect_fps`` the decoder is told to skip B-frames (nothing
references them, so skipping them costs no other frame), and falls back to skipping only
non-reference frames, then to decoding everything, as soon as the frames it delivers leave a gap
longer than one detection period. What this saves on a typical IP camera's stream:
docs/guide/cameras.md (``python -m bench.decode`` measures it).

An idle camera can decode only keyframes (``cameras.idle_keyframes_after_s``): the camera's
``keyframes_only`` check, asked at every packet, says when. Keyframe packets alone go to the decoder,
which is drained after each (one that reorders B-frames would hold a keyframe back until the next:
FFmpeg's own ``skip_frame = NONKEY`` does, a keyframe interval late); the packets after the last
keyframe are kept, not decoded. When the check turns false (something moved), those packets are
decoded first, from that keyframe, so decoding goes on from where the stream is with no missing
reference: the cost is one burst of up to a keyframe interval's frames. A file read in real time
has its packets paced while only keyframes are decoded, as a live camera's come (the camera paces the
frames it gets, and it gets few): read at once, it would reach its next keyframe before the motion in
this one was seen.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import av
import numpy as np

from edge_daemon.config import CameraConfig
from edge_daemon.logs import get_logger
from edge_daemon.sources.base import SourceError, is_network, read_timeout_s

log = get_logger(__name__)

# Most skipping first. FFmpeg's names: BIDIR skips B-frames, NONREF every non-reference frame.
SKIP_LEVELS = ("BIDIR", "NONREF", "DEFAULT")
# Skip frames only when the stream has at least this many frames per detection.
SKIP_FROM_FRAMES_PER_DETECTION = 2.0
# Packets kept while decoding only keyframes, to go on from the last one: over two minutes at 25 fps.
# A stream with rarer keyframes waits for its next keyframe instead.
MAX_KEPT_PACKETS = 3000
# The longest wait for one packet of a file paced in real time: a gap in its timestamps is no pause.
MAX_PACE_S = 1.0


class FrameSkipping:
    """How much the decoder skips, stepping down when the delivered frames stop covering the
    detection rate. Gaps much longer than a detection period are outages, not skipping: ignored."""

    def __init__(self, codec_context, native_fps: float, detect_fps: float, camera: str, fixed: str | None = None):
        self._codec = codec_context
        self._period = 1.0 / detect_fps
        self._camera = camera
        self._fixed = fixed is not None  # a benchmark's fixed level: never stepped down
        if fixed is not None:
            self._level = SKIP_LEVELS.index(fixed)
        else:
            self._level = 0 if native_fps >= SKIP_FROM_FRAMES_PER_DETECTION * detect_fps else len(SKIP_LEVELS) - 1
        self._codec.skip_frame = SKIP_LEVELS[self._level]
        self._last: float | None = None

    def restart(self) -> None:
        """Forget the last frame's time: the gap after keyframe-only decoding is no evidence of skipping too much."""
        self._last = None

    @property
    def level(self) -> str:
        return SKIP_LEVELS[self._level]

    def delivered(self, media_time: float) -> None:
        gap = None if self._last is None else media_time - self._last
        self._last = media_time
        if self._fixed or gap is None or self._level == len(SKIP_LEVELS) - 1:
            return
        if self._period * 1.05 < gap <= self._period * 4:
            self._level += 1
            self._codec.skip_frame = SKIP_LEVELS[self._level]
            log.info("decoding more frames to cover the detection rate", camera=self._camera, gap_s=round(gap, 3),
                     skip=self.level)


class KeyframeDecoder:
    """A stream's packets decoded to frames, every one or (while ``keyframes_only()``) keyframes only."""

    def __init__(self, codec_context, keyframes_only: Callable[[], bool]):
        self._codec = codec_context
        self._keyframes_only = keyframes_only
        self.active = False  # the last frame came from keyframe-only decoding
        self._last_pts: int | None = None  # of the last frame handed out
        self._kept: list = []  # packets not decoded since the last keyframe (or since keyframe-only decoding began)
        self._await_keyframe = False  # the kept packets overflowed: normal decoding waits for a keyframe

    def frames(self, packets, pace: Callable[[object], None] | None = None) -> Iterator:
        """``pace``: called with each packet read while only keyframes are decoded (a file read in real time)."""
        for packet in packets:
            if self._keyframes_only():
                self.active = True
                if pace is not None:
                    pace(packet)
                yield from self._keyframe_only(packet)
                continue
            if self.active:
                self.active = False
                yield from self._resume()
            if self._await_keyframe and not packet.is_keyframe:
                continue
            self._await_keyframe = False
            yield from self._handed_out(self._codec.decode(packet))
        if self.active and not self._keyframes_only():  # the end came while kept packets wait: decode them
            self.active = False
            yield from self._resume()

    def _keyframe_only(self, packet) -> Iterator:
        if not packet.is_keyframe:
            if len(self._kept) < MAX_KEPT_PACKETS:
                self._kept.append(packet)
            else:
                self._kept, self._await_keyframe = [], True
            return
        self._kept, self._await_keyframe = [packet], False
        # Drained at once, then started afresh: a decoder that reorders (B-frames) would hold the
        # keyframe back until the next one.
        frames = [*self._codec.decode(packet), *self._codec.decode(None)]
        self._codec.flush_buffers()
        yield from self._handed_out(frames)

    def _resume(self) -> Iterator:
        """Decode the kept packets: from the last keyframe (decoded again, from a fresh decoder: it may
        have been drained), or, when no keyframe came since keyframe-only decoding began, from where
        the decoder stopped. Frames already handed out are not handed out again."""
        kept, self._kept = self._kept, []
        if kept and kept[0].is_keyframe:
            self._codec.flush_buffers()
        handed_out = self._last_pts
        for packet in kept:
            yield from self._handed_out(
                frame for frame in self._codec.decode(packet)
                if frame.pts is None or handed_out is None or frame.pts > handed_out  # not the keyframe again
            )

    def _handed_out(self, frames) -> Iterator:
        for frame in frames:
            self._last_pts = frame.pts if frame.pts is not None else self._last_pts
            yield frame


def _never() -> bool:
    return False


class PyAvSource:
    decoder = "pyav"

    def __init__(self, config: CameraConfig, skip: str | None = None, keyframes_only: Callable[[], bool] = _never):
        """``skip``: a fixed level of ``SKIP_LEVELS`` instead of the adaptive choice (benchmarks);
        ``keyframes_only``: asked at every packet whether to decode only keyframes (an idle scene)."""
        if config.url.startswith("usb:"):
            raise SourceError("decoder 'pyav' reads files and network streams; use 'opencv' for usb:N")
        options = {"rtsp_transport": "tcp"} if config.url.startswith("rtsp://") else {}
        timeout = read_timeout_s(config) if is_network(config.url) else None
        try:
            self._container = av.open(config.url, options=options, timeout=timeout)
            self._stream = self._container.streams.video[0]
        except (av.error.FFmpegError, IndexError) as exc:
            raise SourceError(f"PyAV cannot open it: {_reason(exc)}") from None
        self._stream.thread_type = "SLICE"  # no frame threading: it would delay every frame
        self._stream.codec_context.thread_count = 1
        if not config.deblocking:
            # Read when the decoder opens, at the first packet (docs/guide/cameras.md#deblocking).
            self._stream.codec_context.options = {"skip_loop_filter": "all"}
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.native_fps = float(rate) if rate and 0 < float(rate) < 1000 else 25.0
        self.width, self.height = self._stream.codec_context.width, self._stream.codec_context.height
        self.skipping = FrameSkipping(self._stream.codec_context, self.native_fps, config.detect_fps, config.name, skip)
        self._time_base = float(self._stream.time_base or 0)
        self._start = self._stream.start_time or 0
        self.last_read_at = time.monotonic()  # when the last packet came: what a stall is measured by
        self._decoder = KeyframeDecoder(self._stream.codec_context, keyframes_only)
        self._opened_at = time.monotonic()  # media time 0 of a file read in real time
        realtime_file = config.is_file and config.realtime
        self._frames = self._decoder.frames(self._packets(), self._pace if realtime_file else None)
        self._frame = None
        self._count = 0
        self._was_keyframes_only = False

    @property
    def keyframes_only(self) -> bool:
        """Whether the last frame came from keyframe-only decoding."""
        return self._decoder.active

    def _pace(self, packet) -> None:
        """Wait until the packet's media time has come (a file read in real time, decoding only keyframes)."""
        stamp = packet.dts if packet.dts is not None else packet.pts
        if stamp is None or not self._time_base:
            return
        ahead = (stamp - self._start) * self._time_base - (time.monotonic() - self._opened_at)
        if ahead > 0:
            time.sleep(min(ahead, MAX_PACE_S))

    def _packets(self):
        for packet in self._container.demux(self._stream):
            self.last_read_at = time.monotonic()
            yield packet

    def grab(self) -> float | None:
        try:
            self._frame = next(self._frames)
        except (StopIteration, av.error.FFmpegError, OSError):
            return None
        self._count += 1
        if self._frame.pts is not None and self._time_base:
            media_time = (self._frame.pts - self._start) * self._time_base
        else:
            media_time = (self._count - 1) / self.native_fps
        if self.keyframes_only:
            self._was_keyframes_only = True
        else:
            if self._was_keyframes_only:
                self._was_keyframes_only = False
                self.skipping.restart()
            self.skipping.delivered(media_time)
        return media_time

    def retrieve(self) -> PyAvPicture | None:
        return None if self._frame is None else PyAvPicture(self._frame)

    def release(self) -> None:
        self._container.close()


class PyAvPicture:
    """A decoded frame (``messages.Picture``) converted by FFmpeg's swscale only when a stage asks,
    straight from the decoder's planes: the small grey copy for motion reads only the luma plane,
    and the shrunk BGR frame for the detector is scaled and converted in one pass, both far cheaper
    than converting the whole frame to BGR and shrinking that."""

    def __init__(self, frame: av.VideoFrame):
        self._frame = frame

    @property
    def size(self) -> tuple[int, int]:
        return self._frame.width, self._frame.height

    def bgr(self) -> np.ndarray:
        return self._frame.to_ndarray(format="bgr24")

    def grey(self, size: tuple[int, int]) -> np.ndarray:
        return self._scaled(size, "gray")

    def bgr_shrunk(self, size: tuple[int, int]) -> np.ndarray:
        return self._scaled(size, "bgr24")

    def _scaled(self, size: tuple[int, int], pixel_format: str) -> np.ndarray:
        width, height = size
        return self._frame.reformat(width=width, height=height, format=pixel_format, interpolation="AREA").to_ndarray()


def _reason(exc: Exception) -> str:
    """FFmpeg's words without the URL it may quote (which can hold credentials)."""
    return getattr(exc, "strerror", None) or type(exc).__name__
