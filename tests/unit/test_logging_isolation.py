"""Tests leave logging as they found it (tests/conftest.py `logging_as_found`): a test that
configures logging as a process does, at level info, hid the debug events a later test of
the same pytest-xdist worker captured (`command_conflict` in test_load_path, session 16)."""

from __future__ import annotations

import structlog
from structlog.testing import capture_logs

from infra.logging import configure_logging
from infra.settings import Settings
from tests.conftest import structlog_config_restored


def _debug_events() -> list[str]:
    with capture_logs() as logs:
        structlog.get_logger("partnerfleet.commands").debug("command_conflict", attempt=1)
    return [e["event"] for e in logs]


def test_logging_configured_inside_a_test_is_undone_after_it() -> None:
    assert _debug_events() == ["command_conflict"]
    with structlog_config_restored():
        configure_logging(Settings())  # LOG_LEVEL info, as `partnerfleet serve` runs
        assert _debug_events() == []  # the leak, while it lasts
    assert _debug_events() == ["command_conflict"]
