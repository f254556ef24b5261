"""What a store holds, counted from its events: the table `partnerfleet demo` prints."""

from __future__ import annotations

from collections import Counter

from eventsourcing.utils import get_topic

from domain.customer_group import CustomerGroup
from domain.device import Device
from domain.partner import PartnerTenant
from domain.passport import Passport
from handlers import PartnerFleet

PAGE = 10_000
# (label, event class): each row counts the stored events of its class.
ROWS: tuple[tuple[str, type[object]], ...] = (
    ("partners", PartnerTenant.Registered),
    ("partner users", PartnerTenant.UserRegistered),
    ("customer groups", CustomerGroup.Created),
    ("customer dashboards", CustomerGroup.CustomerDashboardCreated),
    ("devices registered by customers", Device.Registered),
    ("PCs reported by e2Open", Device.ReportedByE2Open),
    ("PCs enrolled with a cPIN", Device.EnrolledWithCpin),
    ("PC transfers", Device.DeviceTransferred),
    ("consent grants", Device.ConsentGranted),
    ("consent withdrawals", Device.ConsentWithdrawn),
    ("consent corrections", Device.ConsentCorrected),
    ("service levels", Device.ServiceLevelAdded),
    ("service events", Device.ServiceEventRecorded),
    ("alerts", Device.AlertRaised),
    ("repair cases routed", Device.RepairCaseRouted),
    ("favourites", Passport.FavoriteAdded),
)
# Events read further: customers of registered devices, severities of service events.
_READ = (get_topic(Device.Registered), get_topic(Device.ServiceEventRecorded))


def store_summary(fleet: PartnerFleet) -> list[tuple[str, int]]:
    """(what, how many) for the rows above, plus distinct customers and critical service
    events, read from the whole notification log (a few seconds per million events)."""
    topics: Counter[str] = Counter()
    customers: set[str] = set()
    critical = 0
    start = 1
    while page := fleet.recorder.select_notifications(start=start, limit=PAGE):
        for notification in page:
            topics[notification.topic] += 1
            if notification.topic in _READ:
                event = fleet.mapper.to_domain_event(notification)
                customers.update(filter(None, [getattr(event, "customer_id", None)]))
                critical += getattr(event, "severity", None) == "critical"
        start = page[-1].id + 1
    rows = [(label, topics[get_topic(cls)]) for label, cls in ROWS]
    return [
        *rows,
        ("customers with devices", len(customers)),
        ("critical service events", critical),
    ]
