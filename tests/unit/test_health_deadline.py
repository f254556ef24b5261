"""Kind 6: /healthz answers while the store does not, and says so (503), within its deadline.

With PostgreSQL unreachable a read waits for the pools' own timeouts (30 s and more), so a
probe got no answer at all for about 35 s. Each read of the health check now has a
deadline (`infra.http.routes.health.READ_SECONDS`); one that passes it is reported in `errors`.
"""

from __future__ import annotations

import threading

import pytest
from fastapi.testclient import TestClient

from infra.http.app import create_api
from infra.http.routes import health as http
from infra.settings import Settings
from tests.scenarios import in_memory_fleet


def test_kind6_healthz_is_503_naming_a_store_that_does_not_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kind 6: the store's head never comes: 503 "degraded", with why, not a hung probe."""
    fleet = in_memory_fleet()
    released = threading.Event()

    def hangs() -> int:
        released.wait()
        return 0

    monkeypatch.setattr(http, "READ_SECONDS", 0.05)
    monkeypatch.setattr(fleet.recorder, "max_notification_id", hangs)
    api = TestClient(create_api(fleet, Settings()))
    try:
        answer = api.get("/healthz")
    finally:
        released.set()

    assert (answer.status_code, answer.json()["status"]) == (503, "degraded")
    assert answer.json()["errors"] == ["the store gave no answer within 0.05 s"]


def test_kind6_healthz_is_200_when_the_store_answers() -> None:
    """Kind 6: with nothing hanging, nothing is reported."""
    answer = TestClient(create_api(in_memory_fleet(), Settings())).get("/healthz")
    assert (answer.status_code, answer.json()["errors"]) == (200, [])
