"""`partnerfleet relay-parked` with nothing parked says so in one line (session 21's
walkthrough: it printed nothing, which an operator cannot tell from a command that did
not run)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from infra.cli.app import cli


def test_s21_relay_parked_with_nothing_parked_says_so(tmp_path: Path) -> None:
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'store.sqlite3'}"}
    result = CliRunner().invoke(cli, ["relay-parked"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines() == [
        "No events are parked: the relay published every event it read."
    ]
