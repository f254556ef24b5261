"""Replaying a device's consent and link records: the rules the consent queries share.

A record is a row of `pf_k_history` as a dict (see `projections.consent.HISTORY_COLUMNS`).
Every function takes one device's records in the device's own order (by `version`).

- The consent record in effect is the latest grant or withdrawal, or the correction that
  replaced it; a correction of any other record changes only the past (R-CON-4; as
  `domain.consent.ConsentRecords` does; docs/decisions.md "The record in effect").
- A partner's records are its own links and unlinks, and the consent records of the
  periods in which the device was linked to it (R-CON-4; "A partner's consent history").
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Replayed:
    """A device's consent record in effect, and the partner's link in effect, if any."""

    consent: Row | None
    link: Row | None

    @property
    def granted(self) -> bool:
        """R-CON-3: the record in effect is a grant, or a correction that names a wording."""
        record = self.consent
        if record is None:
            return False
        return record["action"] == "granted" or (
            record["action"] == "corrected" and record["text_version"] is not None
        )


def in_effect_after(current: Row | None, record: Row) -> Row | None:
    """R-CON-4: the consent record in effect once `record` (a consent record) is applied."""
    if record["action"] != "corrected":
        return record  # a grant or withdrawal is a new fact about the present
    if current is not None and record["corrects_version"] == current["version"]:
        return record  # it corrects the record in effect, so it replaces it
    return current  # it corrects the past: history only


def replay(records: Iterable[Row], partner: str) -> Replayed:
    """The consent record and the partner's link in effect after `records` (version order)."""
    consent: Row | None = None
    links: dict[str, Row] = {}  # role -> linked record
    for record in records:
        if record["kind"] == "consent":
            consent = in_effect_after(consent, record)
        elif record["action"] == "linked":
            links[record["role"]] = record
        else:
            links.pop(record["role"], None)
    own = sorted((r for r in links.values() if r["partner"] == partner), key=_version)
    return Replayed(consent, own[0] if own else None)


def corrections_of(records: Iterable[Row], versions: set[int]) -> list[Row]:
    """The corrections of the records at `versions`, and of those corrections, in order."""
    found, corrected = [], set(versions)
    for record in records:
        if record["action"] == "corrected" and record["corrects_version"] in corrected:
            found.append(record)
            corrected.add(record["version"])
    return found


def partner_records(records: list[Row], partner: str) -> list[Row]:
    """R-CON-4: of one device's records, those that belong to the partner's link periods.

    Those are the partner's own links and unlinks; every consent record made while the
    device was linked to it (in any role); at the start of each period, the consent record
    then in effect with the records it corrects (so the partner's history replays to the
    same answers); and corrections made later of any of these.
    """
    by_version = {r["version"]: r for r in records}
    kept: set[int] = set()
    roles: set[str] = set()  # roles in which the device is linked to the partner
    consent: Row | None = None
    for record in records:
        if record["kind"] == "link":
            if record["partner"] == partner:
                if not roles and record["action"] == "linked":
                    kept.update(_chain(by_version, consent))
                _follow_link(roles, record)
                kept.add(record["version"])
            continue
        if roles or (record["action"] == "corrected" and record["corrects_version"] in kept):
            kept.add(record["version"])
        consent = in_effect_after(consent, record)
    return [r for r in records if r["version"] in kept]


def _follow_link(roles: set[str], record: Row) -> None:
    if record["action"] == "linked":
        roles.add(record["role"])
    else:
        roles.discard(record["role"])


def _chain(by_version: dict[int, Row], record: Row | None) -> list[int]:
    """The record's version and, if it is a correction, those of the records it corrects."""
    chain = []
    while record is not None:
        chain.append(record["version"])
        record = by_version.get(record["corrects_version"])
    return chain


def _version(record: Row) -> int:
    version: int = record["version"]
    return version
