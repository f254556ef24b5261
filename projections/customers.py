"""All Customers / Favorites Only and the customer group dashboard (R-FAV-*, R-GRP-*, R-PAR-2).

Rows per partner user's world: customer groups with device counts by connection type and
service-event counts, favourites and default views, group members, admins, child groups.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from domain.customer_group import CustomerGroup
from domain.device import Device, normalise_serial
from domain.partner import PartnerTenant
from domain.passport import Passport
from domain.text import fold
from projections.base import Tx, View, handles, placeholders
from projections.ids import formatted, id_text

CONNECTIONS = ("central_connect", "direct_connect", "pc_agent")


class CustomersView(View):
    """Everything the partner's My Customers pages show."""

    name: ClassVar[str] = "customers"
    tables: ClassVar[tuple[str, ...]] = (
        "pf_c_partners",
        "pf_c_users",
        "pf_c_favourites",
        "pf_c_groups",
        "pf_c_members",
        "pf_c_admins",
        "pf_c_children",
        "pf_c_shares",
        "pf_c_devices",
        "pf_c_events",
    )
    ddl: ClassVar[tuple[str, ...]] = (
        "CREATE TABLE IF NOT EXISTS pf_c_partners (partner_id TEXT PRIMARY KEY,"
        " partner TEXT NOT NULL UNIQUE, name TEXT NOT NULL, partner_type TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pf_c_users (passport_ref TEXT PRIMARY KEY,"
        " passport TEXT NOT NULL, partner_id TEXT NOT NULL, role TEXT NOT NULL,"
        " default_view TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS pf_c_users_passport ON pf_c_users (passport)",
        "CREATE TABLE IF NOT EXISTS pf_c_favourites (passport_ref TEXT NOT NULL,"
        " group_id TEXT NOT NULL, PRIMARY KEY (passport_ref, group_id))",
        "CREATE TABLE IF NOT EXISTS pf_c_groups (group_id TEXT PRIMARY KEY, partner TEXT NOT NULL,"
        " customer_id TEXT NOT NULL, name TEXT NOT NULL, search_name TEXT NOT NULL,"
        " is_dashboard INTEGER NOT NULL, notifications INTEGER NOT NULL,"
        " deleted INTEGER NOT NULL, central_connect INTEGER NOT NULL,"
        " direct_connect INTEGER NOT NULL, pc_agent INTEGER NOT NULL,"
        " service_events INTEGER NOT NULL, critical_events INTEGER NOT NULL)",
        "CREATE INDEX IF NOT EXISTS pf_c_groups_page ON pf_c_groups"
        " (partner, deleted, search_name, group_id)",
        "CREATE TABLE IF NOT EXISTS pf_c_members (group_id TEXT NOT NULL, device_id TEXT NOT NULL,"
        " reason TEXT NOT NULL, PRIMARY KEY (group_id, device_id, reason))",
        "CREATE INDEX IF NOT EXISTS pf_c_members_device ON pf_c_members (device_id)",
        "CREATE TABLE IF NOT EXISTS pf_c_admins (group_id TEXT NOT NULL, passport TEXT NOT NULL,"
        " PRIMARY KEY (group_id, passport))",
        "CREATE TABLE IF NOT EXISTS pf_c_children (group_id TEXT NOT NULL, child_id TEXT NOT NULL,"
        " name TEXT NOT NULL, created_by TEXT NOT NULL, by_partner INTEGER NOT NULL,"
        " PRIMARY KEY (group_id, child_id))",
        "CREATE TABLE IF NOT EXISTS pf_c_shares (group_id TEXT NOT NULL, child_id TEXT NOT NULL,"
        " passport TEXT NOT NULL, PRIMARY KEY (group_id, child_id, passport))",
        "CREATE TABLE IF NOT EXISTS pf_c_devices (device_id TEXT PRIMARY KEY,"
        " serial TEXT NOT NULL, connection TEXT NOT NULL, model TEXT NOT NULL)",
        "CREATE TABLE IF NOT EXISTS pf_c_events (device_id TEXT NOT NULL, event_id TEXT NOT NULL,"
        " severity TEXT NOT NULL, PRIMARY KEY (device_id, event_id))",
    )

    # Counts are updated in place (every group at a rebuild's end, the touched groups after
    # each batch when following) and no index covers them: half-full pages let PostgreSQL
    # update a group's row on its own page without new index entries (HOT). Measured on
    # 60,000 groups: the rebuild's recount 0.73-0.79 s of server CPU against 1.17-1.28 s.
    postgres_storage: ClassVar[dict[str, str]] = {"pf_c_groups": "fillfactor = 50"}
    # While rebuilding, `finish_batch` reads nothing and the handlers write by key; the
    # recount at the end planned the same with and without statistics (1.3 s of server
    # CPU either way for 60,000 groups, session 18), so the tables are analyzed at the end.
    rebuild_reads: ClassVar[bool] = False

    rebuild_inserts: ClassVar[dict[type[Any], str]] = {
        Device.Registered: "INSERT INTO pf_c_devices SELECT {id}, {state}->>'serial',"
        " {state}->>'connection', {state}->>'model'",
        Device.ReportedByE2Open: "INSERT INTO pf_c_devices SELECT {id}, {state}->>'serial',"
        " 'pc_agent', {state}->>'model'",
        Device.ServiceEventRecorded: "INSERT INTO pf_c_events SELECT {id},"
        " {state}->>'event_id', {state}->>'severity'",
    }

    def __init__(self) -> None:
        self._touched: set[str] = set()  # groups whose counts this batch may have changed
        self._event_devices: set[str] = set()  # devices with new service events
        # Devices registered in this batch: a group may have listed them before (a command
        # saves the group's DeviceAdded before the device's Registered), so its counts
        # change now (issue 11: counts must not depend on where batches end).
        self._new_devices: set[str] = set()

    @handles(PartnerTenant.Registered)
    def _partner(self, tx: Tx, e: PartnerTenant.Registered) -> None:
        tx.execute(
            "INSERT INTO pf_c_partners VALUES (?, ?, ?, 'reseller')",
            (str(e.originator_id), e.location_id, e.name),
        )

    @handles(PartnerTenant.AccreditedAsServicePartner)
    def _accredited(self, tx: Tx, e: PartnerTenant.AccreditedAsServicePartner) -> None:
        tx.execute(
            "UPDATE pf_c_partners SET partner_type = 'service_partner' WHERE partner_id = ?",
            (str(e.originator_id),),
        )

    @handles(PartnerTenant.UserRegistered)
    def _user(self, tx: Tx, e: PartnerTenant.UserRegistered) -> None:
        tx.execute(
            "INSERT INTO pf_c_users VALUES (?, ?, ?, ?, 'all_customers')",
            (
                str(Passport.id_for(e.passport_id)),
                e.passport_id,
                str(e.originator_id),
                e.role,
            ),
        )

    @handles(Passport.DefaultViewChanged)
    def _view(self, tx: Tx, e: Passport.DefaultViewChanged) -> None:
        tx.execute(
            "UPDATE pf_c_users SET default_view = ? WHERE passport_ref = ?",
            (e.view, str(e.originator_id)),
        )

    @handles(Passport.FavoriteAdded)
    def _favourite(self, tx: Tx, e: Passport.FavoriteAdded) -> None:
        tx.execute(
            "INSERT INTO pf_c_favourites VALUES (?, ?)",
            (str(e.originator_id), str(e.customer_group_id)),
        )

    @handles(Passport.FavoriteRemoved)
    def _unfavourite(self, tx: Tx, e: Passport.FavoriteRemoved) -> None:
        tx.execute(
            "DELETE FROM pf_c_favourites WHERE passport_ref = ? AND group_id = ?",
            (str(e.originator_id), str(e.customer_group_id)),
        )

    @handles(CustomerGroup.Created)
    def _group(self, tx: Tx, e: CustomerGroup.Created) -> None:
        group_id = id_text(e.originator_id)
        tx.execute(
            "INSERT INTO pf_c_groups VALUES (?, ?, ?, ?, ?, 0, 0, 0, 0, 0, 0, 0, 0)",
            (
                group_id,
                e.partner_location_id,
                e.customer_id,
                e.customer_name,
                fold(e.customer_name),  # R-FAV-5: searched and sorted in one form
            ),
        )
        tx.executemany("INSERT INTO pf_c_admins VALUES (?, ?)", [(group_id, a) for a in e.admins])

    @handles(CustomerGroup.CustomerDashboardCreated)
    def _dashboard(self, tx: Tx, e: CustomerGroup.CustomerDashboardCreated) -> None:
        self._set(tx, e, "is_dashboard", 1)

    @handles(CustomerGroup.SelfServiceNotificationsSwitched)
    def _notifications(self, tx: Tx, e: CustomerGroup.SelfServiceNotificationsSwitched) -> None:
        self._set(tx, e, "notifications", int(e.on))

    @handles(CustomerGroup.Deleted)
    def _deleted(self, tx: Tx, e: CustomerGroup.Deleted) -> None:
        self._set(tx, e, "deleted", 1)
        # R-FAV-2/3: a deleted group is nobody's favourite, also where an older history's
        # Passport kept the star (this release unstars in the deletion's own transaction).
        tx.execute("DELETE FROM pf_c_favourites WHERE group_id = ?", (str(e.originator_id),))

    @handles(CustomerGroup.Reopened)
    def _reopened(self, tx: Tx, e: CustomerGroup.Reopened) -> None:
        self._set(tx, e, "deleted", 0)
        if e.admins is None or e.customer_name is None:
            return  # a version 1 re-opening kept what the group held
        group_id = str(e.originator_id)
        tx.execute(
            "UPDATE pf_c_groups SET name = ?, search_name = ?, is_dashboard = 0,"
            " notifications = 0 WHERE group_id = ?",
            (e.customer_name, fold(e.customer_name), group_id),
        )
        for table in ("pf_c_admins", "pf_c_children", "pf_c_shares"):
            tx.execute(f"DELETE FROM {table} WHERE group_id = ?", (group_id,))
        tx.executemany("INSERT INTO pf_c_admins VALUES (?, ?)", [(group_id, a) for a in e.admins])

    @staticmethod
    def _set(tx: Tx, e: CustomerGroup.Event, column: str, value: int) -> None:
        tx.execute(
            f"UPDATE pf_c_groups SET {column} = ? WHERE group_id = ?",
            (value, id_text(e.originator_id)),
        )

    @handles(CustomerGroup.DeviceAdded)
    def _member(self, tx: Tx, e: CustomerGroup.DeviceAdded) -> None:
        group_id = id_text(e.originator_id)
        tx.execute(
            "INSERT INTO pf_c_members VALUES (?, ?, ?)", (group_id, device_ref(e.serial), e.reason)
        )
        if not self.rebuilding:  # a rebuild recounts every group at its end
            self._touched.add(group_id)

    @handles(CustomerGroup.DeviceRemoved)
    def _non_member(self, tx: Tx, e: CustomerGroup.DeviceRemoved) -> None:
        group_id = id_text(e.originator_id)
        tx.execute(
            "DELETE FROM pf_c_members WHERE group_id = ? AND device_id = ? AND reason = ?",
            (group_id, device_ref(e.serial), e.reason),
        )
        if not self.rebuilding:
            self._touched.add(group_id)

    @handles(CustomerGroup.AdminAdded)
    def _admin(self, tx: Tx, e: CustomerGroup.AdminAdded) -> None:
        tx.execute("INSERT INTO pf_c_admins VALUES (?, ?)", (str(e.originator_id), e.passport_id))

    @handles(CustomerGroup.ChildGroupCreated)
    def _child(self, tx: Tx, e: CustomerGroup.ChildGroupCreated) -> None:
        tx.execute(
            "INSERT INTO pf_c_children VALUES (?, ?, ?, ?, ?)",
            (str(e.originator_id), e.child_id, e.name, e.principal, int(e.by_partner)),
        )

    @handles(CustomerGroup.ChildGroupShared)
    def _share(self, tx: Tx, e: CustomerGroup.ChildGroupShared) -> None:
        tx.execute(
            "INSERT INTO pf_c_shares VALUES (?, ?, ?)",
            (str(e.originator_id), e.child_id, e.with_admin),
        )

    @handles(CustomerGroup.ChildGroupDeleted)
    def _child_deleted(self, tx: Tx, e: CustomerGroup.ChildGroupDeleted) -> None:
        key = (str(e.originator_id), e.child_id)
        tx.execute("DELETE FROM pf_c_children WHERE group_id = ? AND child_id = ?", key)
        tx.execute("DELETE FROM pf_c_shares WHERE group_id = ? AND child_id = ?", key)

    @handles(Device.Registered)
    def _device(self, tx: Tx, e: Device.Registered) -> None:
        tx.execute(
            "INSERT INTO pf_c_devices VALUES (?, ?, ?, ?)",
            (str(e.originator_id), e.serial, e.connection, e.model),
        )
        self._new_devices.add(str(e.originator_id))

    @handles(Device.ReportedByE2Open)
    def _pc(self, tx: Tx, e: Device.ReportedByE2Open) -> None:
        tx.execute(
            "INSERT INTO pf_c_devices VALUES (?, ?, 'pc_agent', ?)",
            (str(e.originator_id), e.serial, e.model),
        )
        self._new_devices.add(str(e.originator_id))

    @handles(Device.ServiceEventRecorded)
    def _service_event(self, tx: Tx, e: Device.ServiceEventRecorded) -> None:
        device_id = str(e.originator_id)
        tx.execute("INSERT INTO pf_c_events VALUES (?, ?, ?)", (device_id, e.event_id, e.severity))
        self._event_devices.add(device_id)

    def finish_batch(self, tx: Tx) -> None:
        """Recount devices and service events of every group this batch touched (a
        rebuild recounts every group once, at its end: `finish_rebuild`)."""
        if self.rebuilding:
            for pending in (self._touched, self._event_devices, self._new_devices):
                pending.clear()
            return
        self._touched.update(_service_groups(tx, sorted(self._event_devices)))
        self._event_devices.clear()
        self._touched.update(_member_groups(tx, sorted(self._new_devices)))
        self._new_devices.clear()
        touched = sorted(self._touched)
        self._touched.clear()
        for start in range(0, len(touched), RECOUNT_CHUNK):
            chunk = touched[start : start + RECOUNT_CHUNK]
            tx.executemany(
                "UPDATE pf_c_groups SET central_connect = ?, direct_connect = ?, pc_agent = ?,"
                " service_events = ?, critical_events = ? WHERE group_id = ?",
                [(*counts, group_id) for group_id, counts in _recount(tx, chunk).items()],
            )

    def finish_rebuild(self, tx: Tx) -> None:
        """Every group's counts from the rows, in one statement (what recounting each
        touched group after each batch leaves: counts derive from members, devices and
        service events only)."""
        tx.execute(RECOUNT_ALL)


RECOUNT_CHUNK = 500  # groups per query: well under any database's parameter limit


@functools.lru_cache(maxsize=65_536)
def device_ref(serial: str) -> str:
    """`str(Device.id_for(serial))`, remembered (a name-based UUID: the same serial
    always gives the same id; half of a rebuild's events name a device by serial). Made
    without `Device.id_for`'s own cache (a rebuild meets most serials once) and without
    `UUID.__str__` (issue 11, session 21). Raises `SerialError` as `Device.id_for` does."""
    return formatted(Device.id_for_normal(normalise_serial(serial)).int)


def _service_groups(tx: Tx, device_ids: list[str]) -> set[str]:
    """The groups in which these devices are linked as to their service partner."""
    groups: set[str] = set()
    for start in range(0, len(device_ids), RECOUNT_CHUNK):
        chunk = device_ids[start : start + RECOUNT_CHUNK]
        rows = tx.query(
            "SELECT group_id FROM pf_c_members WHERE reason = 'service_partner'"
            f" AND device_id IN ({placeholders(chunk)})",
            chunk,
        )
        groups.update(row[0] for row in rows)
    return groups


def _member_groups(tx: Tx, device_ids: list[str]) -> set[str]:
    """The groups that list these devices (for any reason)."""
    groups: set[str] = set()
    for start in range(0, len(device_ids), RECOUNT_CHUNK):
        chunk = device_ids[start : start + RECOUNT_CHUNK]
        rows = tx.query(
            f"SELECT group_id FROM pf_c_members WHERE device_id IN ({placeholders(chunk)})",
            chunk,
        )
        groups.update(row[0] for row in rows)
    return groups


# `_recount` for every group at once; a group without members gets zeros. Set only where a
# count differs (rows a rebuild's batches wrote have zeros).
RECOUNT_ALL = (
    "UPDATE pf_c_groups SET central_connect = c.cc, direct_connect = c.dc, pc_agent = c.pc,"
    " service_events = c.se, critical_events = c.ce FROM ("
    " SELECT g.group_id, coalesce(d.cc, 0) AS cc, coalesce(d.dc, 0) AS dc,"
    " coalesce(d.pc, 0) AS pc, coalesce(e.se, 0) AS se, coalesce(e.ce, 0) AS ce"
    " FROM pf_c_groups g LEFT JOIN ("
    "  SELECT m.group_id,"
    "  count(DISTINCT CASE WHEN d.connection = 'central_connect' THEN m.device_id END) AS cc,"
    "  count(DISTINCT CASE WHEN d.connection = 'direct_connect' THEN m.device_id END) AS dc,"
    "  count(DISTINCT CASE WHEN d.connection = 'pc_agent' THEN m.device_id END) AS pc"
    "  FROM pf_c_members m JOIN pf_c_devices d ON d.device_id = m.device_id"
    "  GROUP BY m.group_id) d ON d.group_id = g.group_id"
    " LEFT JOIN ("
    "  SELECT m.group_id, count(*) AS se,"
    "  sum(CASE WHEN e.severity = 'critical' THEN 1 ELSE 0 END) AS ce"
    "  FROM pf_c_events e JOIN pf_c_members m ON m.device_id = e.device_id"
    "  WHERE m.reason = 'service_partner' GROUP BY m.group_id) e ON e.group_id = g.group_id"
    ") AS c WHERE pf_c_groups.group_id = c.group_id AND (pf_c_groups.central_connect <> c.cc"
    " OR pf_c_groups.direct_connect <> c.dc OR pf_c_groups.pc_agent <> c.pc"
    " OR pf_c_groups.service_events <> c.se OR pf_c_groups.critical_events <> c.ce)"
)


def _recount(tx: Tx, group_ids: list[str]) -> dict[str, list[int]]:
    """Per group: devices by connection type, then service events and critical ones."""
    counts = {group_id: [0, 0, 0, 0, 0] for group_id in group_ids}
    ids = placeholders(group_ids)
    for group_id, connection, devices in tx.query(
        "SELECT m.group_id, d.connection, count(DISTINCT m.device_id) FROM pf_c_members m"
        " JOIN pf_c_devices d ON d.device_id = m.device_id"
        f" WHERE m.group_id IN ({ids}) GROUP BY m.group_id, d.connection",
        group_ids,
    ):
        counts[group_id][CONNECTIONS.index(connection)] = int(devices)
    for group_id, events, critical in tx.query(
        "SELECT m.group_id, count(*), sum(CASE WHEN e.severity = 'critical' THEN 1 ELSE 0 END)"
        " FROM pf_c_events e JOIN pf_c_members m ON m.device_id = e.device_id"
        f" WHERE m.reason = 'service_partner' AND m.group_id IN ({ids})"
        " GROUP BY m.group_id",
        group_ids,
    ):
        counts[group_id][3:] = [int(events), int(critical)]
    return counts
