"""Session 18: a lone surrogate in a raw e2Open report, on PostgreSQL (the COPY stream)
and SQLite: one report rejected with its reason, the rest stored, the batch readable."""

from __future__ import annotations

from domain.device import Device
from domain.intake import E2OpenBatch
from tests.conftest import FleetFactory
from tests.scenarios import OPS, partner, report


def test_r_hld_1_a_surrogate_rejects_one_report_and_the_batch_is_stored(
    fleet_factory: FleetFactory,
) -> None:
    """First attempt (streamed on PostgreSQL), then a retry after a conflict (`_pcs_named`
    looks every PC up): the bad reports rejected, the rest stored; a restart reads it back."""
    fleet = fleet_factory()
    partner(fleet, "LOC-1")
    fleet.receive_e2open_batch(OPS, "first", [report("PC0")])
    reports = [
        *(report(f"PC{i}") for i in range(1, 40)),
        report("PC40", "LOC-1\ud800"),
        report("\udfffPC41"),
        report("PC42", end_customer="Acme\ud800"),
    ]

    fresh = fleet.receive_e2open_batch(OPS, "fresh", reports, fingerprint="sha256:0a")
    retried = fleet.receive_e2open_batch(
        OPS, "retried", [report("PC0"), *reports[-3:], report("PC43")], fingerprint="sha256:0b"
    )

    assert fresh.accepted == [f"PC{i}" for i in range(1, 40)]
    assert [r.index for r in fresh.rejected] == [39, 40, 41]
    assert "reseller_location_id: a lone surrogate (U+D800)" in fresh.rejected[0].reason
    assert "end_customer: a lone surrogate (U+D800)" in fresh.rejected[2].reason
    assert (retried.accepted, retried.duplicates) == (["PC43"], ["PC0"])
    assert [r.index for r in retried.rejected] == [1, 2, 3]
    again = fleet_factory()
    stored = again.repository.get(E2OpenBatch.id_for("fresh"))
    assert [r["index"] for r in stored.rejected] == [39, 40, 41]
    assert again.repository.get(Device.id_for("PC39")).serial == "PC39"
