"""Issue 11, R-CON-4: the batch export on PostgreSQL and on a SQLite file writes the record
export's bytes; on PostgreSQL a connection lost mid-export is an error, never a short file
that looks whole, and an export closed early ends its server-side cursor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from handlers import PartnerFleet
from handlers.devices import PartnerChoice
from infra.bootstrap import build_fleet, build_view_runner
from infra.follow.view_runner import ViewRunner
from infra.settings import Settings
from infra.storage import viewdb
from projections.consent_export import consent_export, encoded, export_batches, lines
from projections.consent_queries import Selection
from tests.actors import auditor, customer
from tests.conftest import POSTGRES_DSN
from tests.scenarios import CUSTOMER, partner, servers
from tests.scopes import AUDIT

DPO = auditor("dpo@hp.example", "corr-dpo")
DEVICES = [f"S{n:02d}" for n in range(30)]


@pytest.fixture
def stack(stored_settings: Settings, tmp_path: Path) -> Iterator[tuple[PartnerFleet, ViewRunner]]:
    """A fleet on the stored backend, with its views (PostgreSQL, or a SQLite file)."""
    settings = stored_settings.model_copy(update={"views_sqlite_path": tmp_path / "views.sqlite3"})
    fleet = build_fleet(settings)
    runner = build_view_runner(settings, fleet)
    yield fleet, runner
    runner.db.close()
    fleet.close()


@pytest.fixture
def pg_stack(
    postgres_settings: Settings, tmp_path: Path
) -> Iterator[tuple[PartnerFleet, ViewRunner]]:
    """The same on PostgreSQL only."""
    fleet = build_fleet(postgres_settings)
    runner = build_view_runner(postgres_settings, fleet)
    yield fleet, runner
    runner.db.close()
    fleet.close()


def history(fleet: PartnerFleet, runner: ViewRunner) -> None:
    """30 devices of C1 linked to LOC-A then granted, half of them relinked to the service
    partner LOC-S and withdrawn, one grant corrected with a reason beyond ASCII; C2's one
    device granted. Caught up."""
    partner(fleet, "LOC-A")
    partner(fleet, "LOC-S", service=True)
    fleet.register_devices(CUSTOMER, "C1", servers(*DEVICES), PartnerChoice(location_id="LOC-A"))
    fleet.register_devices(customer("C2"), "C2", servers("T1"), PartnerChoice(location_id="LOC-A"))
    fleet.grant_consent(CUSTOMER, "C1", DEVICES)
    fleet.grant_consent(customer("C2"), "C2", ["T1"])
    to_service = PartnerChoice(location_id="LOC-S", role="service_partner")
    fleet.link_devices(CUSTOMER, "C1", DEVICES[::2], to_service)
    fleet.withdraw_consent(CUSTOMER, "C1", DEVICES[::2])
    [grant, _] = fleet.device("S00").consent_versions
    fleet.correct_consent_record(DPO, "S00", grant, 'Signé « par erreur » \\ "J. Doe"\n🖊', None)
    runner.catch_up()


@pytest.mark.parametrize("form", ["jsonl", "csv"])
@pytest.mark.parametrize(
    "selection",
    [{"customer_id": "C1"}, {"partner": "LOC-S"}, {"serial": "S00"}, {"customer_id": "C-none"}],
    ids=str,
)
def test_issue_11_r_con_4_batches_write_the_record_exports_bytes_on_every_backend(
    stack: tuple[PartnerFleet, ViewRunner], selection: dict[str, Any], form: str
) -> None:
    fleet, runner = stack
    history(fleet, runner)

    with runner.db.transaction() as tx:
        records = list(consent_export(tx, AUDIT, Selection(**selection)))
        old = "".join(lines(records, form)).encode()
        chunks = list(encoded(export_batches(tx, AUDIT, Selection(**selection), size=7), form))

    assert "".join(chunk.text for chunk in chunks).encode() == old
    assert sum(chunk.records for chunk in chunks) == len(records)


def test_issue_11_r_con_4_a_connection_lost_mid_export_is_an_error_not_a_short_export(
    pg_stack: tuple[PartnerFleet, ViewRunner], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server ends the export's backend after the first batch: the batches read before
    come, then the reading's error; the caller never sees a clean end. (The cursor fetches
    3 rows a round trip here, so most rows are still on the server when it ends.)"""
    fleet, runner = pg_stack
    history(fleet, runner)
    with runner.db.transaction() as tx:
        [(total,)] = tx.query("SELECT count(*) FROM pf_k_history WHERE customer_id = 'C1'")
    monkeypatch.setattr(viewdb, "STREAM_BATCH", 3)
    got: list[tuple[Any, ...]] = []
    raised_by: list[str] = []

    with pytest.raises(psycopg.OperationalError), runner.db.transaction() as tx:  # noqa: PT012
        [(backend,)] = tx.query("SELECT pg_backend_pid()")
        batches = export_batches(tx, AUDIT, Selection(customer_id="C1"), size=1)
        got += next(batches)
        with psycopg.connect(POSTGRES_DSN, autocommit=True) as other:
            other.execute("SELECT pg_terminate_backend(%s, 10000)", [backend])
        try:
            for batch in batches:
                got += batch
        except psycopg.OperationalError:
            raised_by.append("batches")
            raise

    assert raised_by == ["batches"]
    assert 1 <= len(got) < total
    with runner.db.transaction() as tx:  # the pool replaced the lost connection
        assert tx.query("SELECT count(*) FROM pf_k_history WHERE serial = 'S00'")[0][0] >= 2


def test_issue_11_r_con_4_an_export_closed_early_ends_its_server_side_cursor(
    pg_stack: tuple[PartnerFleet, ViewRunner],
) -> None:
    fleet, runner = pg_stack
    history(fleet, runner)

    with runner.db.transaction() as tx:
        batches = export_batches(tx, AUDIT, Selection(customer_id="C1"), size=2)
        first = next(batches)
        open_while_read = tx.query("SELECT count(*) FROM pg_cursors")
        batches.close()  # type: ignore[attr-defined]
        open_after_close = tx.query("SELECT count(*) FROM pg_cursors")

    assert len(first) == 2
    assert open_while_read == [(1,)]
    assert open_after_close == [(0,)]
