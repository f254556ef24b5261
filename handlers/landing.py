"""e2Open PCs landed in bulk: their created events encoded straight to stored events (issue 11).

An e2Open batch lands up to 100,000 PCs in one command (R-HLD-1). Each is a new `Device`
whose only event is `Device.ReportedByE2Open`; building the aggregate, the event object and
the mapper's state dict for each, then walking it through the JSON transcoder, was most of
the intake's CPU. `Landing.row` writes the same stored event directly from the validated
`E2OpenReport`: the same topic, the same JSON text byte for byte as
`mapper.to_stored_event` of `Device.land_in_holding_tenant(...)`'s event
(tests/unit/test_issue_11_landing.py proves it over generated reports), with the event's own
timestamp taken per PC as before. The command puts the rows into its `Working`
(`Working.add_encoded`), which saves them first, in its one transaction, and turns a row
back into its `Device` when the same command looks the PC up again (a serial twice in a
batch). Only with the stock codec (no compressor, no cipher, the fleet transcoder's names
for datetimes, dates and UUIDs); otherwise `available` is False and the command lands
aggregates as before.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from json.encoder import encode_basestring  # C, as the transcoder's
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper, StoredEvent
from eventsourcing.utils import get_topic

from domain.base import Cause
from domain.device import Device
from domain.intake import E2OpenReport, PlainReport
from handlers.transcoding import FleetTranscoder

# The transcodings the stored JSON names (eventsourcing's and handlers/transcoding.py's).
NAMES = {datetime: "datetime_iso", date: "date_iso", UUID: "uuid_hex"}
REPORTED = Device.ReportedByE2Open
_INITIAL = Device.INITIAL_VERSION


def _codec_fits(mapper: Mapper[Any]) -> bool:
    """Whether the mapper stores events as plain FleetTranscoder JSON with NAMES."""
    transcoder = mapper.transcoder
    if mapper.compressor is not None or mapper.cipher is not None:
        return False
    if not isinstance(transcoder, FleetTranscoder):
        return False
    if getattr(REPORTED, "class_version", 1) != 1:  # its state would carry class_version
        return False
    return all(
        (found := transcoder.types.get(kind)) is not None and found.name == name
        for kind, name in NAMES.items()
    )


def stored_event(
    device_id: UUID,
    topic: str,
    state: bytes,
    _new: Any = object.__new__,
    _set: Any = object.__setattr__,
) -> StoredEvent:
    """`StoredEvent(device_id, 1, topic, state)` without the frozen dataclass's checked
    `__setattr__` per field (half its cost; the same object: tests compare them). Its
    `__dict__` is given whole, made by one dict display (session 18: a sixth less than
    updating the new object's dict by keywords); the defaults are bound once."""
    made: StoredEvent = _new(StoredEvent)
    _set(
        made,
        "__dict__",
        {
            "originator_id": device_id,
            "originator_version": _INITIAL,
            "topic": topic,
            "state": state,
        },
    )
    return made


class Landing:
    """Stored `Device.ReportedByE2Open` events of one command's cause, written directly.

    `available`: False when the mapper's codec is not the one `row` writes (then land
    `Device` aggregates instead).
    """

    def __init__(self, mapper: Mapper[Any], cause: Cause) -> None:
        self.available = _codec_fits(mapper)
        self.topic = get_topic(REPORTED)
        # The constant middle of every row: the aggregate's topic and the cause.
        self._cause = (
            ',"originator_topic":'
            + encode_basestring(get_topic(Device))
            + ',"principal":'
            + encode_basestring(cause.principal)
            + ',"correlation_id":'
            + encode_basestring(cause.correlation_id)
        )
        self._tenants: dict[UUID, str] = {}
        # Per Location ID as reports spell it: its holding tenant, or why its PCs are
        # rejected (a batch cannot change a partner; the first lookup is in the Working).
        self.holdings: dict[str, UUID | str] = {}
        # The serials this command landed (normal form): a second report of one takes the
        # model's path, which finds the first (str hashes are cached, UUIDs' are not).
        self.landed: set[str] = set()
        self._second, self._second_text = -1, ""  # the last second `iso_at` wrote

    def iso_at(self, ns: int) -> str:
        """`datetime.isoformat()` of the UTC time `ns` (nanoseconds since the epoch, floored
        to microseconds as `datetime.now` does), its second formatted once (a batch writes
        tens of thousands of timestamps a second: a third of the cost of `now().isoformat()`)."""
        second, micro = divmod(ns // 1_000, 1_000_000)
        if second != self._second:
            self._second = second
            self._second_text = datetime.fromtimestamp(second, UTC).isoformat()[:19]
        # %-formatting: a third less than the f-string's format spec (session 18); the
        # same text (micro is 0 to 999,999).
        return (
            "%s.%06d+00:00" % (self._second_text, micro)  # noqa: UP031 (measured faster)
            if micro
            else self._second_text + "+00:00"
        )

    def plain_row(
        self,
        device_id: UUID,
        report: PlainReport,
        holding_tenant_id: UUID,
        timestamp: datetime | None = None,
    ) -> StoredEvent:
        """`row` of a report in its plain form (domain.intake.plain_report): the same
        stored event, without an E2OpenReport in between."""
        serial, model, location, distributor, shipped, customer, care_plan = report
        when = self.iso_at(time.time_ns()) if timestamp is None else timestamp.isoformat()
        ended = "null" if customer is None else encode_basestring(customer)
        # The tenant's text as `_tenant` gives it, read inline once made (session 19).
        tenant = self._tenants.get(holding_tenant_id) or self._tenant(holding_tenant_id)
        # serial (letters and digits), ship date (YYYY-MM-DD) and plan need no escapes.
        state = (
            f'{{"timestamp":{{"_type_":"datetime_iso","_data_":"{when}"}}'
            f'{self._cause},"serial":"{serial}","model":{encode_basestring(model)}'
            f',"reseller_location_id":{encode_basestring(location)}'
            f',"distributor":{encode_basestring(distributor)}'
            f',"ship_date":{{"_type_":"date_iso","_data_":"{shipped}"}}'
            f',"end_customer":{ended},"care_plan":"{care_plan}"{tenant}'
        )
        return stored_event(device_id, self.topic, state.encode())

    def _tenant(self, holding_tenant_id: UUID) -> str:
        """The row's end: the holding tenant's id, as JSON (one text per tenant)."""
        tenant = self._tenants.get(holding_tenant_id)
        if tenant is None:
            tenant = self._tenants[holding_tenant_id] = (
                ',"holding_tenant_id":{"_type_":"uuid_hex","_data_":'
                + encode_basestring(holding_tenant_id.hex)
                + "}}"
            )
        return tenant

    def row(
        self,
        device_id: UUID,
        report: E2OpenReport,
        holding_tenant_id: UUID,
        timestamp: datetime | None = None,
    ) -> StoredEvent:
        """The stored created event of the PC `report` lands in `holding_tenant_id`, as the
        mapper would store `Device.land_in_holding_tenant(cause, holding_tenant_id,
        **report.model_dump())`'s; `device_id` is `Device.id_for(report.serial)` (the
        caller has it already). `timestamp`: the event's (now, in UTC, unless given)."""
        when = datetime.now(UTC) if timestamp is None else timestamp
        customer = report.end_customer
        state = "".join(
            (
                '{"timestamp":{"_type_":"datetime_iso","_data_":',
                encode_basestring(when.isoformat()),
                "}",
                self._cause,
                ',"serial":',
                encode_basestring(report.serial),
                ',"model":',
                encode_basestring(report.model),
                ',"reseller_location_id":',
                encode_basestring(report.reseller_location_id),
                ',"distributor":',
                encode_basestring(report.distributor),
                ',"ship_date":{"_type_":"date_iso","_data_":',
                encode_basestring(report.ship_date.isoformat()),
                '},"end_customer":',
                "null" if customer is None else encode_basestring(customer),
                ',"care_plan":',
                encode_basestring(report.care_plan),
                self._tenant(holding_tenant_id),
            )
        )
        return StoredEvent(
            originator_id=device_id,
            originator_version=Device.INITIAL_VERSION,
            topic=self.topic,
            state=state.encode("utf8"),
        )
