"""`partnerfleet serve`'s last step (infra/cli/serve.py, `run`): the heap built at start is
frozen out of the cyclic collector (and its thresholds raised) before uvicorn serves, and
uvicorn's access log is asked for only at the levels that show it."""

from __future__ import annotations

import gc
from typing import Any

import pytest
import uvicorn

from infra.cli import serve
from infra.cli.processes import GC_THRESHOLDS
from infra.settings import Settings


@pytest.mark.parametrize(("level", "access_log"), [("info", True), ("warning", False)])
def test_run_freezes_the_start_heap_then_serves(
    monkeypatch: pytest.MonkeyPatch, level: str, access_log: bool
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(app: Any, **options: Any) -> None:
        seen.update(options, app=app, frozen=gc.get_freeze_count(), thresholds=gc.get_threshold())

    monkeypatch.setattr(uvicorn, "run", fake_run)
    app = object()
    thresholds = gc.get_threshold()
    try:
        serve.run(app, Settings(log_level=level, port=8123))
    finally:
        gc.unfreeze()  # this test process goes on collecting as before
        gc.set_threshold(*thresholds)

    assert seen["app"] is app
    assert seen["frozen"] > 0
    assert seen["thresholds"] == GC_THRESHOLDS  # fewer collections under load (session 19)
    assert (seen["port"], seen["log_level"], seen["access_log"]) == (8123, level, access_log)


def test_serve_parts_first_follows_as_chosen_the_others_only_serve() -> None:
    """`serve --workers 3`: every part shares the host and port (--reuse-port) and the
    demo flag; the first follows views, policies and relay as chosen, the others none."""
    parts = serve.serve_parts(Settings(host="127.0.0.1", port=8124), 3, True, True, False, True)
    assert len(parts) == 3
    tails = [part[part.index("serve") :] for part in parts]
    common = ["serve", "--reuse-port", "--host", "127.0.0.1", "--port", "8124", "--demo"]
    assert tails[0] == [*common, "--views", "--no-policies", "--relay"]
    assert tails[1] == tails[2] == [*common, "--no-views", "--no-policies", "--no-relay"]


def test_parts_share_a_drawn_cursor_key_unless_one_is_configured() -> None:
    """Without CURSOR_KEY the supervisor draws one for all parts (a new one each start);
    with it, the parts read the configured one from the environment themselves."""
    drawn = serve.shared_keys(Settings())
    assert len(drawn["CURSOR_KEY"]) >= 48
    assert serve.shared_keys(Settings()) != drawn
    assert (
        serve.shared_keys(Settings(cursor_key="configured-key-of-forty-characters-at-least")) == {}
    )


def test_listening_sockets_share_one_port() -> None:
    """Two sockets of `listening_socket` listen on the same port (SO_REUSEPORT)."""
    first = serve.listening_socket("127.0.0.1", 0)
    try:
        port = first.getsockname()[1]
        second = serve.listening_socket("127.0.0.1", port)
        second.close()
    finally:
        first.close()
