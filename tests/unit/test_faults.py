"""Fuzzed event payloads parse or fail cleanly."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from edge_daemon.messages import Event

event_fields = st.fixed_dictionaries(
    {},
    optional={
        "event_id": st.text(max_size=40),
        "type": st.sampled_from(["recognized", "unknown", "updated", "ended"]) | st.text(max_size=10),
        "box": st.text(max_size=20) | st.none(),
        "camera": st.text(max_size=20) | st.integers(),
        "track_id": st.integers() | st.text(max_size=5) | st.none(),
        "identity": st.none() | st.text(max_size=30),
        "score": st.floats(allow_nan=True) | st.text(max_size=5),
        "bbox": st.lists(st.floats(allow_nan=False) | st.integers(), max_size=6),
        "ts": st.text(max_size=30),
        "frame_ts": st.text(max_size=30),
        "attempts": st.integers(),
        "embedder": st.text(max_size=10),
        "embedder_version": st.text(max_size=10),
        "gallery_version": st.none() | st.text(max_size=10),
        "crop_path": st.none() | st.text(max_size=10),
        "extra": st.integers(),
    },
)


@settings(max_examples=300, deadline=None)
@given(fields=event_fields)
def test_fuzzed_event_payloads_parse_or_fail_cleanly(fields):
    """What a consumer does with our payloads: it validates, or it is a ValidationError, and a valid
    event survives the JSON round trip unchanged."""
    try:
        event = Event.model_validate_json(json.dumps(fields, allow_nan=True))
    except ValidationError:
        return
    assert Event.model_validate_json(event.to_json()) == event
