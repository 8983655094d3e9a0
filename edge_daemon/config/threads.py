"""``[threads]``: the compute threads of OpenCV, FAISS and the model processes."""

from __future__ import annotations

from pydantic import Field

from edge_daemon.config.base import Section


class ThreadsConfig(Section):
    opencv: int = Field(
        1, ge=0, le=64, title="OpenCV threads", description="cv2.setNumThreads in the daemon (resizing, warping); 0: OpenCV's default."
    )
    faiss: int = Field(
        1, ge=0, le=64, title="FAISS threads", description="OpenMP threads for gallery search; one query is fastest on one. 0: default."
    )
    model_process: int = Field(
        1, ge=1, le=64, title="Threads per model process", description="Compute threads of each detector/embedder process."
    )
