"""What the tracking and decision tests of several tiers share: a transport that keeps the events it gets."""

from __future__ import annotations


class Collect:
    name = "collect"

    def __init__(self):
        self.events = []

    def publish(self, event):
        self.events.append(event)

    def close(self):
        pass
