"""What the decision maker hands on: each event it makes, with what the sinks may need besides it,
and the interface every sink has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from edge_daemon.messages import Event, Identification


@dataclass(frozen=True)
class TrackFaces:
    """An ended track's template faces and when they were seen, for the face history's grouping."""

    vectors: tuple[np.ndarray, ...]  # the embeddings of its template
    qualities: tuple[float, ...]
    first_seen: float | None  # capture time of its first face embedded
    last_seen: float  # capture time of the latest face behind its decision


@dataclass(frozen=True)
class Decided:
    """An event on its way through the sinks."""

    event: Event
    face: Identification | None = None  # the face a decision was made on (none for 'ended' or an unseen track)
    track: TrackFaces | None = None  # with 'ended': the track's faces


class DecisionSink(Protocol):
    def take(self, decided: Decided) -> Decided:
        """Do this sink's part with a decision; return what goes on to the next sink (the event
        as it now is: a sink may add to it)."""
        ...
