"""My IT Environment (R-PAR-2): a customer's own devices, by Insight RS hosting device.

What a customer admin sees of its devices: connection, model, the partners linked in each
role (R-LNK-4), and the consent in effect now (R-CON-1…4: the latest grant or withdrawal,
or the correction that replaced it). The consent history of one device is
`consent_queries.history` with the same `CustomerScope`.

Handlers are idempotent: a device row is inserted once, links are upserted per role, and
consent moves only forward (a record older than the one kept changes nothing), so an event
applied twice leaves the rows as they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import groupby
from typing import Any, ClassVar

from domain.device import Device
from handlers.access import CustomerScope
from projections.base import Tx, View, handles, iso, missing_device, placeholders, query_serial
from projections.paging import (
    DEFAULT_LIMIT,
    Key,
    after_clause,
    checked_limit,
    key_params,
    page_of,
    where,
)


class EnvironmentView(View):
    """Per device: owner, hosting device, connection, model, links and consent in effect."""

    name: ClassVar[str] = "environment"
    tables: ClassVar[tuple[str, ...]] = ("pf_e_devices", "pf_e_links")
    ddl: ClassVar[tuple[str, ...]] = (
        # host: the hosting device's serial for it and the devices it manages, "" otherwise;
        # member: 0 for the hosting device itself, 1 for the others (it is listed first).
        "CREATE TABLE IF NOT EXISTS pf_e_devices (device_id TEXT PRIMARY KEY,"
        " customer_id TEXT, serial TEXT NOT NULL, connection TEXT NOT NULL,"
        " model TEXT NOT NULL, host TEXT NOT NULL, member INTEGER NOT NULL,"
        " consent_version INTEGER, consent_granted INTEGER NOT NULL,"
        " consent_text TEXT, consent_scope TEXT, consent_since TEXT)",
        "CREATE INDEX IF NOT EXISTS pf_e_devices_page"
        " ON pf_e_devices (customer_id, host, member, serial)",
        "CREATE INDEX IF NOT EXISTS pf_e_devices_serial ON pf_e_devices (serial)",
        "CREATE TABLE IF NOT EXISTS pf_e_links (device_id TEXT NOT NULL, role TEXT NOT NULL,"
        " partner TEXT NOT NULL, since TEXT NOT NULL, PRIMARY KEY (device_id, role))",
    )

    @handles(Device.Registered)
    def _registered(self, tx: Tx, e: Device.Registered) -> None:
        host = e.hosting_serial or (e.serial if e.is_hosting_device else "")
        member = 0 if e.is_hosting_device else 1
        self._insert(tx, e, e.customer_id, e.connection, e.model, host, member)

    @handles(Device.ReportedByE2Open)
    def _reported(self, tx: Tx, e: Device.ReportedByE2Open) -> None:
        self._insert(tx, e, e.end_customer, "pc_agent", e.model, "", 1)

    @staticmethod
    def _insert(tx: Tx, e: Device.Event, customer: str | None, *values: Any) -> None:
        serial = getattr(e, "serial", "")
        tx.execute(
            "INSERT INTO pf_e_devices VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, NULL, NULL, NULL)"
            " ON CONFLICT (device_id) DO NOTHING",
            (str(e.originator_id), customer, serial, *values),
        )

    @handles(Device.EnrolledWithCpin)
    def _enrolled(self, tx: Tx, e: Device.EnrolledWithCpin) -> None:
        tx.execute(
            "UPDATE pf_e_devices SET customer_id = ? WHERE device_id = ?",
            (e.customer_id, str(e.originator_id)),
        )

    @handles(Device.PartnerLinked)
    def _linked(self, tx: Tx, e: Device.PartnerLinked) -> None:
        tx.execute(
            "INSERT INTO pf_e_links VALUES (?, ?, ?, ?) ON CONFLICT (device_id, role)"
            " DO UPDATE SET partner = excluded.partner, since = excluded.since",
            (str(e.originator_id), e.role, e.location_id, iso(e.timestamp)),
        )

    @handles(Device.PartnerUnlinked)
    def _unlinked(self, tx: Tx, e: Device.PartnerUnlinked) -> None:
        tx.execute(
            "DELETE FROM pf_e_links WHERE device_id = ? AND role = ? AND partner = ?",
            (str(e.originator_id), e.role, e.location_id),
        )

    @handles(Device.ConsentGranted)
    def _granted(self, tx: Tx, e: Device.ConsentGranted) -> None:
        self._consent(tx, e, True, e.text_version, e.scope)

    @handles(Device.ConsentWithdrawn)
    def _withdrawn(self, tx: Tx, e: Device.ConsentWithdrawn) -> None:
        self._consent(tx, e, False, e.text_version, e.scope)

    @handles(Device.ConsentCorrected)
    def _corrected(self, tx: Tx, e: Device.ConsentCorrected) -> None:
        # R-CON-4: a correction changes the present only when it corrects the record in
        # effect (as `consent_replay.in_effect_after`); a correction of the past is history.
        self._consent(tx, e, e.text_version is not None, e.text_version, None, e.corrects_version)

    @staticmethod
    def _consent(
        tx: Tx,
        e: Device.Event,
        granted: bool,
        text: str | None,
        scope: str | None,
        corrects: int | None = None,
    ) -> None:
        condition = "consent_version IS NULL OR consent_version < ?"
        params: list[Any] = [e.originator_version]
        if corrects is not None:
            condition, params = "consent_version = ?", [corrects]
        tx.execute(
            "UPDATE pf_e_devices SET consent_version = ?, consent_granted = ?,"
            " consent_text = ?, consent_scope = COALESCE(?, consent_scope), consent_since = ?"
            f" WHERE device_id = ? AND ({condition})",
            (
                e.originator_version,
                int(granted),
                text,
                scope,
                iso(e.timestamp),
                str(e.originator_id),
                *params,
            ),
        )


@dataclass(frozen=True)
class ConsentNow:
    """R-CON-1…3: whether consent is in effect now, on which wording, set where (`device`,
    or `insight_rs_host:<serial>` for a hosting device's setting), since when (UTC text);
    all None but `granted` if never set."""

    granted: bool
    text_version: str | None
    scope: str | None
    since: str | None


@dataclass(frozen=True)
class EnvironmentDevice:
    """One of the customer's devices: its links (role -> Location ID, R-LNK-4) and consent.

    `host` is the serial of the Insight RS hosting device that manages it (its own serial
    for a hosting device), None for a device no hosting device manages.
    """

    serial: str
    connection: str
    model: str
    host: str | None
    is_hosting_device: bool
    links: dict[str, str]
    consent: ConsentNow


@dataclass(frozen=True)
class HostGroup:
    """The devices of one hosting device (it first), or (`host` None) the standalone ones."""

    host: str | None
    devices: list[EnvironmentDevice]


@dataclass(frozen=True)
class Environment:
    """R-PAR-2: a page of My IT Environment; `next_after` as in `projections.paging.Page`.

    A hosting device's group may continue on the next page (same `host`).
    """

    customer_id: str
    groups: list[HostGroup]
    next_after: Key | None


DEVICE_COLUMNS = (
    "d.device_id, d.serial, d.connection, d.model, d.host, d.member,"
    " d.consent_granted, d.consent_text, d.consent_scope, d.consent_since"
)
PAGE_KEY = ("d.host", "d.member", "d.serial")


def my_it_environment(
    tx: Tx, scope: CustomerScope, *, after: Key | None = None, limit: int = DEFAULT_LIMIT
) -> Environment:
    """R-PAR-2: the customer's own devices grouped by hosting device (standalone devices
    first), each with connection, model, links and consent now, keyset-paged after
    `(host, member, serial)`; QueryError for a bad `limit` or `after`."""
    limit = checked_limit(limit)
    after_sql = after_clause(PAGE_KEY, after, (str, int, str))
    rows = tx.query(
        f"SELECT {DEVICE_COLUMNS} FROM pf_e_devices d"
        f"{where('d.customer_id = ?', after_sql)} ORDER BY {', '.join(PAGE_KEY)} LIMIT ?",
        (scope.customer_id, *key_params(after), limit + 1),
    )
    page = page_of(rows, limit, lambda r: (r[4], int(r[5]), r[1]))
    devices = _devices(tx, page.rows)
    groups = [
        HostGroup(host, list(members)) for host, members in groupby(devices, key=lambda d: d.host)
    ]
    return Environment(scope.customer_id, groups, page.next_after)


def environment_device(tx: Tx, scope: CustomerScope, serial: str) -> EnvironmentDevice:
    """R-PAR-2: one of the customer's own devices; another customer's device is "not
    found" in the words for a serial nobody registered (`NotFoundError`)."""
    serial = query_serial(serial)
    rows = tx.query(
        f"SELECT {DEVICE_COLUMNS} FROM pf_e_devices d WHERE d.serial = ? AND d.customer_id = ?",
        (serial, scope.customer_id),
    )
    if not rows:
        raise missing_device(serial)
    return _devices(tx, rows)[0]


def _devices(tx: Tx, rows: list[tuple[Any, ...]]) -> list[EnvironmentDevice]:
    links = _links(tx, [row[0] for row in rows])
    return [_device(row, links.get(row[0], {})) for row in rows]


def _device(row: tuple[Any, ...], links: dict[str, str]) -> EnvironmentDevice:
    _, serial, connection, model, host, member, granted, text, set_where, since = row
    return EnvironmentDevice(
        serial=serial,
        connection=connection,
        model=model,
        host=host or None,
        is_hosting_device=member == 0,
        links=links,
        consent=ConsentNow(bool(granted), text, set_where, since),
    )


def _links(tx: Tx, device_ids: list[str]) -> dict[str, dict[str, str]]:
    if not device_ids:
        return {}
    found: dict[str, dict[str, str]] = {}
    for device_id, role, partner in tx.query(
        "SELECT device_id, role, partner FROM pf_e_links"
        f" WHERE device_id IN ({placeholders(device_ids)}) ORDER BY device_id, role",
        device_ids,
    ):
        found.setdefault(device_id, {})[role] = partner
    return found
