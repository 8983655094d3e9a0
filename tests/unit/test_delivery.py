"""The event spool on its own: its bound drops the oldest events and counts them, and a corrupt
spool file is a clear error."""

from __future__ import annotations

import json
import time

import pytest

from edge_daemon.comms.spool import EventSpool


def test_spool_bound_drops_oldest_and_counts(tmp_path):
    spool = EventSpool(tmp_path / "s.db", max_events=5)
    for number in range(8):
        spool.append("door", json.dumps({"n": number}))
    assert spool.depth() == 5 and spool.dropped == 3
    assert [json.loads(item.payload)["n"] for item in spool.oldest(10)] == [3, 4, 5, 6, 7]
    spool.close()
    reopened = EventSpool(tmp_path / "s.db", max_events=5, max_age_s=0.5)
    time.sleep(0.6)
    reopened.append("door", "{}")  # the five old ones are now too old
    assert reopened.depth() == 1 and reopened.dropped == 5
    reopened.close()


def test_corrupt_spool_file_is_a_clear_error(tmp_path):
    (tmp_path / "s.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(OSError, match="cannot open event spool"):
        EventSpool(tmp_path / "s.db")
