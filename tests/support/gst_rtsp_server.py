"""A real RTSP server for the test suite: serves an MP4 clip as live H.264, looping forever.

Run with the system Python, where Debian's ``gi`` bindings live (not the project's venv)::

    /usr/bin/python3 tests/support/gst_rtsp_server.py --clip CLIP.mp4 --port 0 [--path /stream]
        [--user U --password P] [--parent-pid PID]

When it accepts connections it prints one line, ``READY <port>``, to stdout.
SIGUSR1 pauses feeding frames (clients stay connected but receive nothing), SIGUSR2 resumes,
SIGTERM exits cleanly. With ``--parent-pid`` it exits by itself within a second of that
process dying, so a crashed test run leaves no server behind.

Why the clip is demuxed up front and pushed through an ``appsrc``: a ``filesrc ! qtdemux``
media cannot loop, because the server's own seek on PLAY overrides any segment seek and the
client sees end-of-stream after one pass. Instead every H.264 access unit is read into memory
once and a feeder thread pushes them in real time into a live ``appsrc``, shifting the
timestamps by one clip length per pass.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import threading
from dataclasses import dataclass

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstApp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstApp, GstRtspServer  # noqa: E402

MEDIA_LAUNCH = (
    "( appsrc name=src is-live=true format=time do-timestamp=false"
    " ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=1 )"
)
USER_ROLE = "user"


@dataclass(frozen=True)
class AccessUnit:
    data: bytes
    dts: int  # nanoseconds from the clip's first decoded frame: the feeder paces by this
    pts: int  # differs from dts when the clip has B-frames
    duration: int
    keyframe: bool


@dataclass(frozen=True)
class Clip:
    caps: Gst.Caps
    units: list[AccessUnit]
    length: int  # nanoseconds of one pass


def read_clip(path: str) -> Clip:
    """Demux the whole file into byte-stream H.264 access units (SPS/PPS before each keyframe)."""
    pipeline = Gst.parse_launch(
        f'filesrc location="{path}" ! qtdemux ! h264parse config-interval=-1'
        " ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false"
    )
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    units, caps = [], None
    try:
        while (sample := pull_sample(pipeline, sink, path)) is not None:
            caps = caps or sample.get_caps()
            buffer = sample.get_buffer()
            keyframe = not buffer.has_flags(Gst.BufferFlags.DELTA_UNIT)
            dts = buffer.pts if buffer.dts == Gst.CLOCK_TIME_NONE else buffer.dts
            data = buffer.extract_dup(0, buffer.get_size())
            units.append(AccessUnit(data, dts, buffer.pts, buffer.duration, keyframe))
    finally:
        pipeline.set_state(Gst.State.NULL)
    if not units:
        raise SystemExit(f"no H.264 video in {path}")
    origin = units[0].dts
    units = [AccessUnit(u.data, u.dts - origin, u.pts - origin, u.duration, u.keyframe) for u in units]
    return Clip(caps, units, units[-1].dts + units[-1].duration)


def pull_sample(pipeline: Gst.Pipeline, sink: GstApp.AppSink, path: str) -> Gst.Sample | None:
    """The next access unit, or None at the end; exits on a pipeline error (a plain pull would block forever)."""
    while (sample := sink.try_pull_sample(Gst.SECOND // 10)) is None and not sink.is_eos():
        failure = pipeline.get_bus().pop_filtered(Gst.MessageType.ERROR)
        if failure is not None:
            raise SystemExit(f"cannot read {path}: {failure.parse_error()[0].message}")
    return sample


class Feeder:
    """Pushes the clip into one media's appsrc in real time, pass after pass, until the media goes."""

    def __init__(self, clip: Clip, appsrc: GstApp.AppSrc, running: threading.Event):
        self.clip = clip
        self.appsrc = appsrc
        self.running = running  # cleared while paused (SIGUSR1); shared by every feeder
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.feed, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopped.set()

    def running_time(self) -> int:
        """The pipeline's running time: timestamps must follow it, or a live sink drops the buffers as late."""
        clock = self.appsrc.get_clock()
        if clock is None:  # not playing yet
            return 0
        return clock.get_time() - self.appsrc.get_base_time()

    def feed(self) -> None:
        offset = self.running_time()
        for n in itertools.count():
            for unit in self.clip.units:
                offset += self.wait_while_paused()
                shift = offset + n * self.clip.length
                if not self.sleep_until(shift + unit.dts) or not self.push(unit, shift):
                    return

    def wait_while_paused(self) -> int:
        """Block while paused; return how long, so the timeline after the pause keeps up with the clock."""
        if self.running.is_set():
            return 0
        paused_at = self.running_time()
        while not self.running.wait(0.1):
            if self.stopped.is_set():
                return 0
        return self.running_time() - paused_at

    def sleep_until(self, running_time: int) -> bool:
        while (delay := running_time - self.running_time()) > 0:
            if self.stopped.wait(min(delay, Gst.SECOND) / Gst.SECOND):
                return False
        return not self.stopped.is_set()

    def push(self, unit: AccessUnit, shift: int) -> bool:
        buffer = Gst.Buffer.new_wrapped(unit.data)
        buffer.dts = shift + unit.dts
        buffer.pts = shift + unit.pts
        buffer.duration = unit.duration
        if not unit.keyframe:
            buffer.set_flags(Gst.BufferFlags.DELTA_UNIT)
        # FLUSHING or EOS once the media is torn down (last client gone): this feeder is done.
        return self.appsrc.push_buffer(buffer) == Gst.FlowReturn.OK


class ClipFactory(GstRtspServer.RTSPMediaFactory):
    """One shared live media per period with clients; each new media gets its own feeder."""

    def __init__(self, clip: Clip, running: threading.Event):
        super().__init__()
        self.clip = clip
        self.running = running
        self.set_launch(MEDIA_LAUNCH)
        self.set_shared(True)
        self.connect("media-configure", self.on_media_configure)

    def on_media_configure(self, _factory, media: GstRtspServer.RTSPMedia) -> None:
        appsrc = media.get_element().get_by_name("src")
        appsrc.set_property("caps", self.clip.caps)
        feeder = Feeder(self.clip, appsrc, self.running)
        media.connect("unprepared", lambda _media: feeder.stop())
        feeder.start()


def require_basic_auth(server: GstRtspServer.RTSPServer, factory: ClipFactory, user: str, password: str) -> None:
    """Only the given credentials may open the stream; anyone else gets 401."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, USER_ROLE)
    auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_permission_for_role(USER_ROLE, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
    permissions.add_permission_for_role(USER_ROLE, GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
    factory.set_permissions(permissions)


def watch_parent(parent_pid: int, loop: GLib.MainLoop) -> None:
    """Quit once reparented: the test process that started us has died."""

    def check() -> bool:
        if os.getppid() != parent_pid:
            loop.quit()
            return False
        return True

    GLib.timeout_add_seconds(1, check)


def handle_signals(loop: GLib.MainLoop, running: threading.Event) -> None:
    # GLib's handlers run inside the main loop; Python's would wait for it to return control.
    def on(signum: int, action) -> None:
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, lambda: action() or True)

    on(signal.SIGUSR1, running.clear)
    on(signal.SIGUSR2, running.set)
    on(signal.SIGTERM, loop.quit)
    on(signal.SIGINT, loop.quit)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", required=True, help="MP4 file with H.264 video")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--path", default="/stream")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is no longer our parent")
    args = parser.parse_args()
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    return args


def main() -> None:
    args = parse_args()
    Gst.init(None)
    clip = read_clip(args.clip)
    loop = GLib.MainLoop()
    running = threading.Event()
    running.set()

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    factory = ClipFactory(clip, running)
    server.get_mount_points().add_factory(args.path, factory)
    if args.user is not None:
        require_basic_auth(server, factory, args.user, args.password)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{args.port}")

    handle_signals(loop, running)
    if args.parent_pid is not None:
        watch_parent(args.parent_pid, loop)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
