"""The webhook receiver and its dead man's switch, over real HTTP on a loopback port."""

import json
import time

import httpx
import pytest

from ops import monitoring
from ops.receiver import DUPLICATE_WINDOW_SECONDS, MISSING_HEARTBEAT_ALERT, Receiver

WATCHDOG = {"status": "firing", "receiver": "heartbeat", "alerts": [{"status": "firing", "labels": {"alertname": "Watchdog"}}]}


@pytest.fixture
def receiver(tmp_path):
    # A long timeout: the tests drive the switch through check_heartbeat(now=...), not the clock.
    live = Receiver(log_path=tmp_path / "notifications.jsonl", heartbeat_timeout_s=100).start()
    yield live
    live.stop()


def missing_heartbeat(receiver: Receiver) -> list[str]:
    return [a["status"] for e in receiver.snapshot() for a in e["alerts"] if a["labels"]["alertname"] == MISSING_HEARTBEAT_ALERT]


def test_notifications_are_recorded_with_their_arrival_time_and_logged_to_the_file(receiver, tmp_path):
    body = {"status": "firing", "alerts": [{"status": "firing", "labels": {"alertname": "X", "severity": "critical"}}]}
    assert httpx.post(receiver.url, json=body).status_code == 200
    (entry,) = receiver.snapshot()
    assert entry["alerts"] == body["alerts"] and entry["received_at"] > 0
    assert json.loads((tmp_path / "notifications.jsonl").read_text())["alerts"] == body["alerts"]
    assert httpx.get(receiver.url).json()[0]["alerts"] == body["alerts"]


def notification(status: str, group: str = '{}:{alertname="X"}', fingerprint: str = "f1") -> dict:
    alert = {"status": status, "fingerprint": fingerprint, "startsAt": "2026-11-23T00:00:00Z", "labels": {"alertname": "X"}}
    return {"groupKey": group, "status": status, "externalURL": "http://alertmanager-2:9093", "alerts": [alert]}


def test_the_same_notification_twice_within_the_window_is_counted_as_a_duplicate(receiver):
    assert httpx.post(receiver.url, json=notification("firing")).status_code == 200
    assert httpx.post(receiver.url, json=notification("firing")).status_code == 200
    first, second = receiver.snapshot()
    assert "duplicate" not in first and second["duplicate"] is True
    assert httpx.get(receiver.base_url + "/stats").json() == {"notifications": 2, "duplicates": 1}


def test_a_resolution_another_group_another_alert_or_another_endpoint_is_not_a_duplicate(receiver):
    for body, endpoint in [
        (notification("firing"), "/alerts"),
        (notification("resolved"), "/alerts"),
        (notification("firing", group='{}:{alertname="Y"}'), "/alerts"),
        (notification("firing", fingerprint="f2"), "/alerts"),
        (notification("firing"), "/escalations"),
    ]:
        assert httpx.post(receiver.base_url + endpoint, json=body).status_code == 200
    assert receiver.stats() == {"notifications": 5, "duplicates": 0}


def test_a_repeat_after_the_window_is_a_repeat_not_a_duplicate(receiver, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr("ops.receiver.time.time", lambda: now[0])
    receiver.record(notification("firing"))
    now[0] += DUPLICATE_WINDOW_SECONDS + 1
    receiver.record(notification("firing"))
    assert receiver.stats() == {"notifications": 2, "duplicates": 0}


def test_unknown_paths_empty_bodies_and_non_json_are_refused(receiver):
    assert httpx.post(receiver.base_url + "/elsewhere", json={}).status_code == 404
    assert httpx.post(receiver.url, content=b"").status_code == 400
    assert httpx.post(receiver.url, content=b"{not json").status_code == 400
    assert receiver.snapshot() == []


def test_the_switch_stays_quiet_until_the_first_heartbeat_arms_it(receiver):
    receiver.check_heartbeat(now=1e12)
    assert missing_heartbeat(receiver) == []


def test_a_silent_watchdog_pages_after_the_timeout_and_resolves_when_it_returns(receiver):
    assert httpx.post(receiver.base_url + "/heartbeat", json=WATCHDOG).status_code == 200
    beat = receiver.last_heartbeat
    receiver.check_heartbeat(now=beat + 99)
    assert missing_heartbeat(receiver) == [], "not before the timeout"
    receiver.check_heartbeat(now=beat + 101)
    receiver.check_heartbeat(now=beat + 150)
    assert missing_heartbeat(receiver) == ["firing"], "once, not once per check"
    (page,) = [a for e in receiver.snapshot() for a in e["alerts"] if a["labels"]["alertname"] == MISSING_HEARTBEAT_ALERT]
    assert page["labels"]["severity"] == "critical"
    assert page["annotations"]["runbook_url"] == monitoring.runbook_url("WatchdogHeartbeatMissing")

    httpx.post(receiver.base_url + "/heartbeat", json=WATCHDOG)
    receiver.check_heartbeat()
    assert missing_heartbeat(receiver) == ["firing", "resolved"]


def test_the_watcher_thread_trips_the_switch_on_its_own(tmp_path):
    live = Receiver(heartbeat_timeout_s=0.5).start()
    try:
        httpx.post(live.base_url + "/heartbeat", json=WATCHDOG)
        deadline = time.monotonic() + 10
        while not missing_heartbeat(live):
            assert time.monotonic() < deadline, "the watcher never checked"
            time.sleep(0.1)
    finally:
        live.stop()


def test_a_timeout_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="heartbeat_timeout_s"):
        Receiver(heartbeat_timeout_s=0)


def test_a_doubled_alert_is_a_warning_and_a_doubled_heartbeat_only_information(receiver, caplog):
    caplog.set_level("INFO", logger="ops.receiver")
    for endpoint in ("/heartbeat", "/alerts"):
        receiver.record(notification("firing"), endpoint=endpoint)
        receiver.record(notification("firing"), endpoint=endpoint)
    levels = {r.levelname for r in caplog.records if r.message.startswith("duplicate notification")}
    assert levels == {"INFO", "WARNING"} and receiver.stats()["duplicates"] == 2
