"""`partnerfleet serve`'s last step (infra/cli/serve.py, `run`): the heap built at start is
frozen out of the cyclic collector before uvicorn serves, and uvicorn's access log is asked
for only at the levels that show it."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import uvicorn

from infra.cli import serve
from infra.settings import Settings


@pytest.mark.parametrize(("level", "access_log"), [("info", True), ("warning", False)])
def test_run_freezes_the_start_heap_then_serves(
    monkeypatch: pytest.MonkeyPatch, level: str, access_log: bool
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **options: Any) -> None:
        seen.update(options, app=app, frozen=gc.get_freeze_count())

    monkeypatch.setattr(uvicorn, "run", fake_run)
    app = object()
    try:
        serve.run(app, Settings(log_level=level, port=8123))
    finally:
        gc.unfreeze()  # this test process goes on collecting as before

    assert seen["app"] is app
    assert seen["frozen"] > 0
    assert (seen["port"], seen["log_level"], seen["access_log"]) == (8123, level, access_log)
