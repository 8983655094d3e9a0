"""Where decisions go: each event the decision maker makes passes through its sinks in order, each
doing its part and handing it on (``base.DecisionSink``).

- ``crops``: the face's JPEG, named in the event (``events.crops_dir``);
- ``history``: the face, and at a track's end the track, into the face history (``history.enabled``);
- ``transports``: the event to every transport, through ``comms.dispatcher``.

The history comes before the transports, so that a consumer told of an event finds its face (and,
for 'ended', its track) in the history.
"""

from __future__ import annotations

from pathlib import Path

from edge_daemon.comms.dispatcher import EventDispatcher
from edge_daemon.history import FaceHistory, HistoryGroups
from edge_daemon.pipeline.sinks.base import Decided, DecisionSink, TrackFaces
from edge_daemon.pipeline.sinks.crops import CropFiles
from edge_daemon.pipeline.sinks.history import HistoryRecorder
from edge_daemon.pipeline.sinks.transports import Transports

__all__ = ["Decided", "DecisionSink", "TrackFaces", "decision_sinks"]


def decision_sinks(
    dispatcher: EventDispatcher,
    crops_dir: Path | None = None,
    history: FaceHistory | None = None,
    groups: HistoryGroups | None = None,
) -> list[DecisionSink]:
    """The sinks, in the order an event passes them: its crop file (with ``crops_dir``), the face
    history (with ``history``; tracks grouped with ``groups``), then the transports."""
    sinks: list[DecisionSink] = []
    if crops_dir is not None:
        sinks.append(CropFiles(crops_dir))
    if history is not None:
        sinks.append(HistoryRecorder(history, groups))
    sinks.append(Transports(dispatcher))
    return sinks
