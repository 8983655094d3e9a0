"""An embedder running in a child process (see ``edge_daemon.models.process``)."""

from __future__ import annotations

from typing import Callable

import numpy as np

from edge_daemon.config import EmbedderConfig
from edge_daemon.embedders.alignment import AlignedFace, create_aligner
from edge_daemon.embedders.base import Embedder, EmbedderError
from edge_daemon.models.process import ChildProcess, IsolationError

LocalFactory = Callable[[EmbedderConfig, int], Embedder]


def _build_in_child(spec: tuple[LocalFactory, EmbedderConfig, int]):
    create_local, config, threads = spec
    return create_local(config, threads)


class ProcessEmbedder:
    """``create_local(config, threads)`` built in a child process. Alignment stays in the calling
    process; only the aligned crops cross the pipe."""

    def __init__(self, config: EmbedderConfig, create_local: LocalFactory, threads: int = 1):
        names = ("name", "version", "dim", "default_threshold", "threshold_source", "aligner_spec")
        try:
            self._child = ChildProcess(
                f"embedder-{config.backend}", _build_in_child, (create_local, config, threads), "embed", names, threads=threads
            )
        except IsolationError as exc:
            raise EmbedderError(str(exc)) from None
        for name, value in self._child.attributes.items():
            setattr(self, name, value)
        self.aligner = create_aligner(self.aligner_spec)

    def embed(self, crops: list[AlignedFace]) -> np.ndarray:
        if not crops:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self._child.call(crops)

    def close(self) -> None:
        self._child.close()
