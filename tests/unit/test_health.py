"""Kind 5 and 6: /healthz tells the truth: 200 "ok" only while every loop, view and policy runs."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.testclient import TestClient

from handlers import PolicyRunner
from infra.follow.policy_follower import PolicyFollower
from infra.http.app import create_api
from infra.kafka.relay import Relay
from infra.loops import BackOff, Follower
from infra.settings import Settings
from infra.storage.viewdb import SQLiteViewDB
from tests.scenarios import in_memory_fleet, partner
from tests.unit.test_follower import eventually
from tests.unit.test_view_runner import break_handler, linked_customers


def test_kind5_healthz_is_503_and_names_the_stuck_view_until_it_recovers() -> None:
    """A view stuck on an event: 503 "degraded" with its notification id, topic, error and
    position; the other views "running"; 200 "ok" once it has caught up."""
    runner = linked_customers(2)
    api = TestClient(create_api(runner.fleet, Settings(), runner))
    broken = {"S1"}
    restore = break_handler(runner.view("customers"), "DeviceAdded", broken)
    try:
        runner.catch_up()
        stuck = api.get("/healthz")
        broken.clear()
        assert eventually(lambda: runner.catch_up() >= 0 and not any(runner.lag().values()))
    finally:
        restore()
    well = api.get("/healthz")

    customers = stuck.json()["views"]["customers"]
    assert (stuck.status_code, stuck.json()["status"]) == (503, "degraded")
    assert customers["state"] == "retrying"
    assert customers["topic"].endswith("DeviceAdded")
    assert customers["error"] == "CrashError: cannot apply S1"
    assert customers["position"] < customers["notification_id"]
    assert stuck.json()["views"]["consent"]["state"] == "running"
    assert stuck.json()["views_lag"]["customers"] > 0
    assert (well.status_code, well.json()["status"]) == (200, "ok")


def test_kind6_healthz_is_503_while_a_loop_retries_or_has_stopped() -> None:
    """A loop that keeps failing is "retrying" with its error; one that ended is
    "stopped": either way the service is not "ok"."""
    fleet = in_memory_fleet()

    def lost() -> None:
        raise ConnectionError("server closed the connection unexpectedly")

    retrying = Follower("relay", lost, back_off=BackOff(first=0.001, limit=0.01)).start()
    ended = Follower("consumer", lambda: None)
    api = TestClient(create_api(fleet, Settings(), loops={"relay": retrying, "feed": ended}))
    try:
        assert eventually(lambda: retrying.status().state == "retrying")
        answer = api.get("/healthz")
    finally:
        retrying.stop()

    runners = answer.json()["runners"]
    assert answer.status_code == 503
    assert runners["relay"]["state"] == "retrying"
    assert "server closed the connection" in runners["relay"]["error"]
    assert runners["feed"]["state"] == "stopped"


def test_kind6_healthz_is_200_ok_while_every_follower_runs() -> None:
    """Views and policies followed in-process and healthy: 200 "ok", each "running"."""
    runner = linked_customers(1)
    policies = PolicyFollower(PolicyRunner(runner.fleet), poll_seconds=0.01).start()
    runner.poll_seconds = 0.01
    runner.start()
    partner(runner.fleet, "LOC-2")
    api = TestClient(create_api(runner.fleet, Settings(), runner, policies))
    try:
        deadline = time.monotonic() + 10
        while (answer := api.get("/healthz")).json()["status"] != "ok":
            assert time.monotonic() < deadline, answer.json()
            time.sleep(0.01)
    finally:
        runner.stop()
        policies.stop()

    body = answer.json()
    assert answer.status_code == 200
    assert body["runners"]["views"]["state"] == body["runners"]["policies"]["state"] == "running"
    assert {status["state"] for status in body["views"].values()} == {"running"}
    assert {status["state"] for status in body["policies"].values()} == {"running"}


def test_kind6_healthz_shows_the_in_process_relay_and_is_503_while_its_passes_fail(
    tmp_path: Path,
) -> None:
    """The relay's lag (None before it first reached its broker) and its last error; the
    service is "degraded" while the relay's passes fail, "ok" again once one succeeds."""
    fleet = in_memory_fleet()
    relay = Relay(fleet, SQLiteViewDB(str(tmp_path / "positions.sqlite3")), "127.0.0.1:9")
    api = TestClient(create_api(fleet, Settings(), relay=relay))
    relay.last_error = relay_error()  # as its run loop records it

    failing = api.get("/healthz")
    relay.last_error = None
    well = api.get("/healthz")

    assert failing.status_code == 503
    assert failing.json()["relay"] == {"lag": None, "last_error": relay_error()}
    assert (well.status_code, well.json()["relay"]["last_error"]) == (200, None)


def relay_error() -> str:
    """What the relay's run loop records when no broker answers."""
    return "NoBrokersAvailable: NoBrokersAvailable"
