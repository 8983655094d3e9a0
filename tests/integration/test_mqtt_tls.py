"""Brokers that say what is wrong: a refused port and a name that does not resolve, logged with the
reason and a count."""

from __future__ import annotations

from edge_daemon.config import MqttConfig
from tests.support.mqtt_tls import failed_attempts
from tests.support.waiting import free_port


def test_refused_port_is_logged_with_the_reason_and_a_count_on_repeats(tmp_path):
    broker = f"127.0.0.1:{free_port()}"  # nothing listens there
    # paho retries after 1, 2, 4, 8 s: attempts at 0, 3, 7 and 15 s; the 1st, 2nd and 4th are logged.
    logged, transport = failed_attempts(MqttConfig(url=f"mqtt://{broker}"), tmp_path, count=3, timeout_s=25)
    assert [entry["failed_attempts"] for entry in logged] == [1, 2, 4] and transport.link.failures == 4
    assert all(entry["reason"] == "connection refused: nothing accepts connections on that port" and
               entry["broker"] == broker and entry["role"] == "events" for entry in logged)


def test_a_host_name_that_does_not_resolve_is_a_dns_failure(tmp_path):
    logged, _ = failed_attempts(MqttConfig(url="mqtt://broker.invalid"), tmp_path)  # a reserved name
    assert logged[0]["reason"].startswith("DNS: the host name does not resolve (")
