"""Properties of consent corrections and partner-scoped histories (issue 8, kinds 1 and 8).

Random sequences of grant / withdraw / correct (any record, with a wording or none), and of
links and relinks, on one device; the aggregate and the consent view are compared with a
model written from the rules, not from the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain import DomainError, NotAllowedError
from domain.consent import ConsentError
from handlers import PartnerFleet
from handlers.access import PartnerScope
from handlers.devices import PartnerChoice
from infra.follow.view_runner import ViewRunner
from projections.base import Tx
from projections.consent_queries import Selection, configuration_for, consent_in_effect, history
from projections.consent_replay import replay
from tests.actors import auditor
from tests.scenarios import CUSTOMER, OPS, in_memory_fleet, partner, servers
from tests.scopes import AUDIT, partner_at
from tests.views import memory_runner

DPO = auditor("dpo@hp.example", "corr-dpo")
TEXTS = ("2024-01", "2025-06")
DATA = {"cpu": "Xeon"}
PARTNERS = ("LOC-1", "LOC-2")
ROLES = ("reseller", "service_partner")
PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

grant = st.tuples(st.just("grant"), st.sampled_from(TEXTS))
withdraw = st.tuples(st.just("withdraw"), st.none())
correct = st.tuples(st.just("correct"), st.integers(0, 30), st.sampled_from((None, *TEXTS)))
consent_steps = st.lists(st.one_of(grant, withdraw, correct), min_size=1, max_size=14)


@dataclass
class Model:
    """R-CON-3, R-CON-4 as written: the uncorrected grant/withdraw sequence decides the
    present, except where a correction corrects the record in effect (and so replaces it)."""

    records: list[str | None] = field(default_factory=list)  # wording each record gives
    in_effect: int | None = None  # index of the record in effect

    @property
    def wording(self) -> str | None:
        """The wording consent is in effect on now; None: no consent."""
        return None if self.in_effect is None else self.records[self.in_effect]

    def accepts(self, step: tuple[Any, ...]) -> bool:
        """Grants of the wording in effect and withdrawals without consent are refused."""
        if step[0] == "grant":
            return bool(self.wording != step[1])
        if step[0] == "withdraw":
            return self.wording is not None
        return bool(self.records)

    def record(self, step: tuple[Any, ...]) -> None:
        """Apply an accepted step, as the rules say."""
        if step[0] == "correct":
            if self.target(step) == self.in_effect:
                self.in_effect = len(self.records)
        else:
            self.in_effect = len(self.records)
        self.records.append(step[-1])

    def target(self, step: tuple[Any, ...]) -> int:
        """The record a correction names: any record so far."""
        return int(step[1]) % len(self.records)


def one_linked_device() -> tuple[PartnerFleet, ViewRunner]:
    """Customer C1's server D1, linked to LOC-1 as reseller, with every view followed."""
    fleet = in_memory_fleet()
    partner(fleet, "LOC-1")
    fleet.register_devices(CUSTOMER, "C1", servers("D1"), PartnerChoice(location_id="LOC-1"))
    return fleet, memory_runner(fleet)


def run(fleet: PartnerFleet, model: Model, step: tuple[Any, ...]) -> None:
    """The step as a command; refused exactly when the model refuses it."""
    if step[0] == "grant":
        fleet.grant_consent(CUSTOMER, "C1", ["D1"], text_version=step[1])
    elif step[0] == "withdraw":
        fleet.withdraw_consent(CUSTOMER, "C1", ["D1"])
    else:
        versions = fleet.device("D1").consent_versions
        fleet.correct_consent_record(DPO, "D1", versions[model.target(step)], "DPO", step[2])


def reads_configuration(tx: Tx, scope: PartnerScope) -> bool:
    """R-CON-2: whether LOC-1 may read D1's configuration data now, per the consent view."""
    try:
        return configuration_for(tx, scope, "D1") == DATA
    except NotAllowedError:
        return False


@PROPERTY
@given(steps=consent_steps)
def test_r_con_4_only_a_correction_of_the_record_in_effect_changes_the_present(
    steps: list[tuple[Any, ...]],
) -> None:
    """R-CON-3, R-CON-4: the aggregate after every step, and the consent view now and at
    every record's moment, agree with the model."""
    fleet, runner = one_linked_device()
    model, collected = Model(), False
    then: dict[datetime, str | None] = {}  # each record's moment -> wording in effect after it
    for step in steps:
        if step[0] == "correct" and not model.records:
            continue  # nothing to name yet
        if not model.accepts(step):
            with pytest.raises(ConsentError):
                run(fleet, model, step)
            continue
        run(fleet, model, step)
        model.record(step)
        then[fleet.device("D1").modified_on] = model.wording
        if model.wording is not None and not collected:
            fleet.collect_configuration(OPS, "D1", DATA)  # while allowed: now, once
            collected = True
        assert fleet.may_read_configuration("D1", "LOC-1") == (model.wording is not None)
    runner.catch_up()
    with runner.db.transaction() as tx:
        now = consent_in_effect(tx, AUDIT, "D1", "LOC-1", datetime.now(UTC))
        assert now.in_effect == (model.wording is not None)
        assert reads_configuration(tx, partner_at(fleet, "LOC-1")) == (model.wording is not None)
        past = {at: consent_in_effect(tx, AUDIT, "D1", "LOC-1", at).consent_granted for at in then}
    assert past == {at: wording is not None for at, wording in then.items()}
    runner.db.close()


link = st.tuples(st.just("link"), st.sampled_from(PARTNERS), st.sampled_from(ROLES))
unlink = st.tuples(st.just("unlink"), st.sampled_from(ROLES))
link_and_consent_steps = st.lists(
    st.one_of(link, unlink, grant, withdraw, correct), min_size=1, max_size=16
)


def two_service_partners() -> tuple[PartnerFleet, ViewRunner]:
    """LOC-1 and LOC-2, both service partners, and C1's server D1 linked to neither."""
    fleet = in_memory_fleet()
    for location_id in PARTNERS:
        partner(fleet, location_id, service=True)
    fleet.register_devices(CUSTOMER, "C1", servers("D1"))
    return fleet, memory_runner(fleet)


def attempt(fleet: PartnerFleet, step: tuple[Any, ...]) -> None:
    """The step as a command; a refusal is part of the sequence (it records nothing)."""
    try:
        if step[0] == "link":
            fleet.link_devices(
                CUSTOMER, "C1", ["D1"], PartnerChoice(location_id=step[1], role=step[2])
            )
        elif step[0] == "unlink":
            fleet.unlink_devices(CUSTOMER, "C1", ["D1"], role=step[1])
        elif step[0] == "correct":
            versions = fleet.device("D1").consent_versions
            if versions:
                target = versions[step[1] % len(versions)]
                fleet.correct_consent_record(DPO, "D1", target, "DPO", step[2])
        else:
            run(fleet, Model(), step)
    except DomainError:
        pass


def instant(at: str) -> datetime:
    """A moment as the consent view writes it, back as an aware datetime."""
    return datetime.strptime(at, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@PROPERTY
@given(steps=link_and_consent_steps)
def test_r_con_4_a_partners_own_history_replays_to_the_devices_answers_for_it(
    steps: list[tuple[Any, ...]],
) -> None:
    """R-CON-3, R-CON-4: a partner's history names no other partner's link, holds every
    link of its own, and replayed alone answers "in effect at T" as the device's history
    does, at every record's moment."""
    fleet, runner = two_service_partners()
    for step in steps:
        attempt(fleet, step)
    runner.catch_up()
    with runner.db.transaction() as tx:
        everything = history(tx, AUDIT, Selection(serial="D1")).rows
        for location_id in PARTNERS:
            own = sorted(
                history(tx, AUDIT, Selection(partner=location_id)).rows, key=lambda r: r["version"]
            )
            links = [r for r in everything if r["kind"] == "link" and r["partner"] == location_id]
            assert [r for r in own if r["kind"] == "link"] == sorted(
                links, key=lambda r: r["version"]
            )
            for at in {r["at"] for r in everything}:
                state = replay((r for r in own if r["at"] <= at), location_id)
                answer = consent_in_effect(tx, AUDIT, "D1", location_id, instant(at))
                assert (state.granted and state.link is not None) == answer.in_effect
    runner.db.close()
