"""Issue 11 (session 18): fewer Python steps per e2Open report, the same results.

- `domain.intake.plain_report` checks a report's four required texts with one regular
  expression: it must accept exactly what the per-field checks it replaced accepted
  (`reference_plain_report` below is that code, kept here as the reference), so every bad
  report still goes to the model and keeps its specific error;
- `domain.base._uuid5` sets UUID's slots directly: the same UUID as `uuid.uuid5`;
- `infra.storage.pg_copy.BinaryRows` encodes COPY rows itself: the same bytes as psycopg's
  `write_row` for the same values.
"""

from __future__ import annotations

import json
import pickle
import re
import string
import struct
import unicodedata
import uuid
from datetime import date
from functools import lru_cache
from typing import Any
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import example, given, settings
from hypothesis import strategies as st
from psycopg._copy_base import BinaryFormatter  # write_row's own encoder: the reference
from psycopg.adapt import Transformer
from pydantic import ValidationError

from domain.base import NAMESPACE, _uuid5, fresh_natural_id, natural_id
from domain.feed_bounds import Unreadable, screened
from domain.idempotency import canonical_json, content_fingerprint, nfc_json, text_fingerprint
from domain.intake import E2OpenReport, PlainReport, plain_report
from domain.partner import PartnerTenant
from handlers import PartnerFleet
from handlers.holding import _partners_named
from handlers.intake import Delivery
from infra.storage.pg_copy import BINARY_SIGNATURE, BINARY_TRAILER, CHUNK_BYTES, BinaryRows
from tests.scenarios import IN_MEMORY, OPS, partner
from tests.unit.conftest import e2open_report
from tests.unit.test_issue_11_plain_report import raw_reports

# ---- the per-field plain check as it was before session 18 (the reference) ----

_REQUIRED = frozenset(n for n, f in E2OpenReport.model_fields.items() if f.is_required())
_FIELDS = frozenset(E2OpenReport.model_fields)
_MOST = {"serial": 32, "model": 200, "reseller_location_id": 64, "distributor": 200}
_MOST_CUSTOMER = 200
_CARE_PLANS = frozenset(("premium", "premium_plus"))


def reference_plain_report(raw: object) -> PlainReport | None:
    """domain.intake.plain_report before session 18 (commit d9571a8), unchanged."""
    if type(raw) is not dict or not _REQUIRED <= raw.keys() <= _FIELDS:
        return None
    serial, model = raw["serial"], raw["model"]
    location, distributor = raw["reseller_location_id"], raw["distributor"]
    customer, care_plan = raw.get("end_customer"), raw.get("care_plan", "premium")
    if not (
        _kept(serial, _MOST["serial"])
        and serial.isalnum()
        and _kept(model, _MOST["model"])
        and _kept(location, _MOST["reseller_location_id"])
        and _kept(distributor, _MOST["distributor"])
        and (customer is None or _kept(customer, _MOST_CUSTOMER))
        and type(care_plan) is str
        and care_plan in _CARE_PLANS
    ):
        return None
    shipped = raw["ship_date"]
    shipped = shipped if type(shipped) is str and _is_day(shipped) else None
    if shipped is None:
        return None
    return (serial.upper(), model, location, distributor, shipped, customer, care_plan)


def _kept(text: object, most: int) -> bool:
    return (
        type(text) is str
        and 0 < len(text) <= most
        and text.isascii()
        and text.isprintable()
        and text[0] != " "
        and text[-1] != " "
    )


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@lru_cache
def _is_day(text: str) -> bool:
    if _ISO_DATE.fullmatch(text) is None:
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def test_the_reference_matches_the_field_bounds_of_the_model() -> None:
    """The reference's bounds are the model's (else the comparison proves nothing)."""
    for name, most in {**_MOST, "end_customer": _MOST_CUSTOMER}.items():
        bounds = E2OpenReport.model_fields[name].metadata
        assert most in [getattr(b, "max_length", None) for b in bounds]


class Sly(str):
    """A str subclass: neither check may take it for text (its format could be anything)."""


TEXTS = ["serial", "model", "reseller_location_id", "distributor"]
# Texts at and around each check's edges: lengths at the bounds, every ASCII control and
# DEL, the NUL the new check joins with, blanks at either end, non-ASCII look-alikes.
HOSTILE_TEXT = st.one_of(
    st.sampled_from(["\x00", "a\x00b", "\x00a", "a\x00", "a\x7f", "\x7f", "a\nb", "a\tb", " "]),
    st.sampled_from(["x" * n for n in (1, 2, 31, 32, 33, 63, 64, 65, 199, 200, 201, 5000)]),
    st.sampled_from(["a" + " " * n + "b" for n in (0, 1, 198, 199)]),
    st.builds(
        lambda c, pos: pos.format(chr(c)),
        st.integers(0, 0x7F),
        st.sampled_from(["{0}", "a{0}", "{0}a", "a{0}b", "{0}{0}"]),
    ),
    st.sampled_from(["\u00e9", "\uff21", "\u0660", "\u00b2", "\u212a", "ß", "\u0131", "\ud800"]),
    st.text(string.printable, max_size=210),
    st.text(max_size=8),
)


@st.composite
def hostile_reports(draw: st.DrawFn) -> Any:
    """A good report with one to three fields replaced by hostile values or types."""
    raw: dict[str, Any] = dict(e2open_report("5CG1234ABC"))
    for _ in range(draw(st.integers(1, 3))):
        name = draw(st.sampled_from([*TEXTS, "end_customer", "care_plan", "ship_date"]))
        raw[name] = draw(
            st.one_of(
                HOSTILE_TEXT,
                HOSTILE_TEXT.map(Sly),
                st.sampled_from(
                    [None, 7, 1.5, True, ["a"], {"a": 1}, b"PC1", Sly("premium"), "premium"]
                ),
                st.sampled_from(["2026-10-01", "2026-02-29", "2024-02-29", "2026-1-01"]),
                st.sampled_from(
                    ["\uff12\uff10\uff12\uff16-10-01", "2026-10-01\n", Sly("2026-10-01")]
                ),
            )
        )
    return raw


@settings(max_examples=3000, deadline=None)
@given(raw=st.one_of(raw_reports(), hostile_reports()))
@example(raw=dict(e2open_report("PC1"), model="a\x00b"))
@example(raw=dict(e2open_report("PC1"), serial="x" * 32, model="m" * 200, distributor="d" * 200))
@example(raw=dict(e2open_report("PC1"), reseller_location_id="l" * 65))
@example(raw=dict(e2open_report("PC1"), serial=Sly("PC1")))
@example(raw=dict(e2open_report("PC1"), end_customer=Sly("Acme")))
def test_one_regex_accepts_exactly_what_the_field_checks_accepted(raw: Any) -> None:
    """The plain check of session 18 and the one before agree on every report (plain or
    not, with the same values and exact `str` types), so the model still refuses the same
    reports with the same errors."""
    made = plain_report(raw)
    assert made == reference_plain_report(raw)
    if made is not None:
        assert all(type(v) is str for v in made if v is not None)
        assert made == tuple(_model_values(E2OpenReport.model_validate(raw)))


def _model_values(report: E2OpenReport) -> list[Any]:
    return [
        report.serial,
        report.model,
        report.reseller_location_id,
        report.distributor,
        report.ship_date.isoformat(),
        report.end_customer,
        report.care_plan,
    ]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"model": "a\x00b"}, "model: a NUL character (U+0000) at position 1"),
        ({"model": "m" * 201}, "malformed report: model: String should have at most 200"),
        ({"serial": "PC-1"}, "malformed report: serial: "),
        ({"serial": "x" * 33}, "malformed report: serial: "),
        ({"reseller_location_id": 7}, "malformed report: reseller_location_id: Input should be"),
        ({"end_customer": "e" * 201}, "malformed report: end_customer: String should have at"),
        ({"care_plan": "gold"}, "malformed report: care_plan: Input should be 'premium'"),
        ({"ship_date": "2026-02-30"}, "malformed report: ship_date: "),
    ],
)
def test_bad_reports_keep_their_specific_errors_r_hld_1(
    change: dict[str, Any], reason: str
) -> None:
    """R-HLD-1: a report the plain check passes on is refused by the model, naming the field
    and the problem, while the good reports of the same batch land."""
    fleet = PartnerFleet(env=IN_MEMORY)
    partner(fleet, "LOC-1")
    outcome = fleet.receive_e2open_batch(
        OPS, "bad-1", [e2open_report("PC1"), e2open_report("PC2") | change]
    )
    assert outcome.accepted == ["PC1"]
    [rejected] = outcome.rejected
    assert (rejected.index, rejected.reason.startswith(reason)) == (1, True), rejected.reason
    with pytest.raises(ValidationError):
        E2OpenReport.model_validate(e2open_report("PC2") | change)


# ---- uuid5 ----


@settings(max_examples=1000, deadline=None)
@given(name=st.text(max_size=60) | st.text(string.ascii_uppercase + string.digits, max_size=32))
def test_uuid5_by_hashlib_is_uuid_uuid5(name: str) -> None:
    """The same UUID as uuid.uuid5 (value, version, variant, hash, text, pickle, safety);
    a lone surrogate raises UnicodeEncodeError in both."""
    try:
        expected = uuid.uuid5(NAMESPACE, name)
    except UnicodeEncodeError:
        with pytest.raises(UnicodeEncodeError):
            _uuid5(name)
        return
    made = _uuid5(name)
    assert type(made) is UUID
    assert (made, made.bytes, made.version, made.variant, hash(made), str(made)) == (
        expected,
        expected.bytes,
        5,
        uuid.RFC_4122,
        hash(expected),
        str(expected),
    )
    assert made.is_safe is expected.is_safe
    assert pickle.loads(pickle.dumps(made)) == expected
    normal = unicodedata.normalize("NFC", name)
    assert fresh_natural_id("device", name) == uuid.uuid5(NAMESPACE, f"device:{normal}")
    assert natural_id("device", name) == uuid.uuid5(NAMESPACE, f"device:{normal}")


# ---- COPY rows ----


def psycopg_rows(rows: list[tuple[UUID, int, str, bytes, int]]) -> bytes:
    """What psycopg's write_row sends for `rows` (uuid, int8, text, bytea, int8), whole."""
    formatter = BinaryFormatter(Transformer())
    oids = [psycopg.adapters.types.get_oid(t) for t in ("uuid", "int8", "text", "bytea", "int8")]
    formatter.transformer.set_dumper_types(oids, formatter.format)
    sent = b"".join(bytes(formatter.write_row(row)) for row in rows)
    return sent + bytes(formatter.end())


class Sink:
    """A Copy stand-in that keeps what `write` is given, chunk by chunk."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: Any) -> None:
        self.chunks.append(bytes(data))


ROWS = st.lists(
    st.tuples(
        st.uuids(),
        st.integers(-(2**63), 2**63 - 1),
        st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00")),
        st.binary(max_size=300),
        st.integers(-(2**63), 2**63 - 1),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(rows=ROWS)
def test_binary_rows_are_the_bytes_write_row_sends(
    rows: list[tuple[UUID, int, str, bytes, int]],
) -> None:
    """Signature, rows and trailer exactly as psycopg encodes them (no rows: the signature
    and the trailer, a valid empty COPY)."""
    sink = Sink()
    encoder = BinaryRows(sink)
    for originator_id, version, topic, state, notification_id in rows:
        encoder.add(StoredEvent(originator_id, version, topic, state), notification_id)
    encoder.end()
    assert b"".join(sink.chunks) == psycopg_rows(rows)
    assert sink.chunks[0].startswith(BINARY_SIGNATURE)
    assert sink.chunks[-1].endswith(BINARY_TRAILER)


def test_binary_rows_go_in_chunks_of_the_chunk_size() -> None:
    """Rows are sent as a chunk fills, each chunk whole rows, the first with the signature."""
    state = b"s" * 1000
    rows = [(uuid.uuid4(), 1, "t:T", state, n) for n in range(400)]
    sink = Sink()
    encoder = BinaryRows(sink)
    for originator_id, version, topic, data, notification_id in rows:
        encoder.add(StoredEvent(originator_id, version, topic, data), notification_id)
    row_bytes = 57 + len(state)  # 2 + 4 + 16 + 4 + 8 + (4 + 3) + 4 + 1000 + 4 + 8
    assert len(sink.chunks) == (len(BINARY_SIGNATURE) + 400 * row_bytes) // CHUNK_BYTES
    assert all(CHUNK_BYTES <= len(c) < CHUNK_BYTES + row_bytes for c in sink.chunks)
    assert sink.chunks[0].startswith(BINARY_SIGNATURE)
    encoder.end()
    assert b"".join(sink.chunks) == psycopg_rows(rows)


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (StoredEvent(uuid.uuid4(), 2**63, "t", b""), struct.error),  # no int8
        (StoredEvent("not-a-uuid", 1, "t", b""), AttributeError),
    ],
)
def test_binary_rows_refuse_values_out_of_their_columns(
    event: StoredEvent, error: type[Exception]
) -> None:
    """A value its column cannot hold raises (the stream then fails and the ordinary
    insert raises what it means); nothing of the row is buffered."""
    sink = Sink()
    encoder = BinaryRows(sink)
    with pytest.raises(error):
        encoder.add(event, 1)
    encoder.end()
    assert b"".join(sink.chunks) == BINARY_SIGNATURE + BINARY_TRAILER


# ---- the canonical JSON of a batch (its fingerprint) ----

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(value=JSON_VALUES)
def test_canonical_json_without_the_cycle_check_is_the_same_text(value: object) -> None:
    """Stored fingerprints keep their meaning: the text (so the fingerprint) of any JSON
    value is what the encoder with its cycle check wrote."""
    checked = json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    assert canonical_json(value) == checked
    assert content_fingerprint(value) == text_fingerprint(nfc_json(value))


def test_a_cyclic_message_is_unreadable_and_the_batch_goes_on_r_hld_1() -> None:
    """A message that contains itself (only a Python caller can send one) raises
    RecursionError in the encoder; the batch's check then walks each message and keeps
    that one as unreadable, the others as they are."""
    cyclic: dict[str, Any] = dict(e2open_report("PC2"))
    cyclic["model"] = [cyclic]
    with pytest.raises(RecursionError):
        canonical_json([cyclic])
    kept, fingerprint = screened([e2open_report("PC1"), cyclic])
    assert kept[0] == e2open_report("PC1")
    assert isinstance(kept[1], Unreadable)
    assert "nested deeper than" in kept[1].reason
    assert fingerprint.startswith("sha256:")
    fleet = PartnerFleet(env=IN_MEMORY)
    partner(fleet, "LOC-1")
    outcome = fleet.receive_e2open_batch(OPS, "cyclic-1", [e2open_report("PC1"), cyclic])
    assert outcome.accepted == ["PC1"]
    assert [r.index for r in outcome.rejected] == [1]


def reference_partners_named(messages: list[Any]) -> set[UUID]:
    """handlers.holding._partners_named before session 18 (as a set: its order is a set's),
    with the intended behaviour stated: every Location ID given as text has an id, one
    that is not valid Unicode (a lone surrogate) too, and none raises; such a report is
    rejected later with its own reason (tests/unit/test_session18_surrogates.py)."""
    named: set[str] = set()
    for raw in messages:
        location = raw.get("reseller_location_id") if isinstance(raw, dict) else None
        if isinstance(location, str):
            named.update((location, location.strip()))
    return {PartnerTenant.id_for(location) for location in named}


@settings(max_examples=300, deadline=None)
@given(messages=st.lists(st.one_of(raw_reports(), hostile_reports()), max_size=12))
@example(messages=[{"reseller_location_id": "\ud800"}, {"reseller_location_id": " LOC\udfff "}])
def test_the_partners_a_batch_names_are_found_as_before(messages: list[Any]) -> None:
    """The partners prefetched for a batch: every Location ID given as text, as spelt and
    stripped, once each (unhashable or missing ones skipped), as before session 18; a
    lone surrogate in one names an id of its own instead of raising (session 18)."""
    messages = [*messages, {"reseller_location_id": " LOC-1 "}, {"reseller_location_id": ["x"]}]
    found = _partners_named(Delivery("b-1", messages, "sha256:0"))
    assert len(found) == len(set(found))
    assert set(found) == reference_partners_named(messages)
    assert PartnerTenant.id_for("LOC-1") in found
