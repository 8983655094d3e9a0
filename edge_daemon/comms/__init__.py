"""Where events go: one dispatcher, pluggable transports (JSON lines, MQTT)."""
