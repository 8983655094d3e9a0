"""A lossless copy (FFV1, BGR) of the demo clip's frames as decoded on the host. The clip is MPEG-4
Part 2, whose decoding FFmpeg does not make bit-exact across CPUs (its x86 and arm IDCTs differ): on
the copy both architectures read the same pixels, so only the arithmetic after decoding differs."""

from __future__ import annotations

from pathlib import Path

import av


def lossless_copy(source_path: Path, target_path: Path) -> None:
    with av.open(str(source_path)) as source, av.open(str(target_path), "w") as target:
        video = source.streams.video[0]
        stream = target.add_stream("ffv1", rate=video.average_rate)
        stream.width, stream.height, stream.pix_fmt = video.codec_context.width, video.codec_context.height, "bgr0"
        for frame in source.decode(video):
            bgr = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24").reformat(format="bgr0")
            for packet in stream.encode(bgr):
                target.mux(packet)
        for packet in stream.encode():
            target.mux(packet)
