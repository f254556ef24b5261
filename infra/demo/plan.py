"""The demo's customers and devices, generated from a fixed seed (the same on every machine).

A plan is plain data: what each customer has and does. `infra.demo.seeding` turns it into
commands. `random.Random(int)` is stable across Python versions, so a plan never changes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from domain.service_level import ServiceLevel
from handlers.access import Claims
from infra.demo.people import (
    CUSTOMER,
    CUSTOMER_2,
    END_USER_PC,
    RESELLER,
    RESELLER_2,
    SERVICE_PARTNER,
    customer_admin,
    end_user,
)

SEED = 20_260_509
FULL_SIZE = 200  # customers; 15 devices each: 3,000 devices
DEVICES_PER_CUSTOMER = 15
PCS_PER_CUSTOMER = 3
CENTRAL_PER_HOST = 4
TODAY = date(2026, 5, 9)  # "today" of the demo's service levels (some are expired by then)

_PREFIXES = (
    "Alpen", "Nord", "Rhein", "Berg", "Hansa", "Elbe", "Main", "Isar", "Donau", "Weser",
    "Spree", "Neckar", "Taunus", "Harz", "Eifel", "Allgäu", "Boden", "Mosel", "Ruhr", "Saale",
)  # fmt: skip
_KINDS = (
    "Logistik GmbH", "Maschinenbau AG", "Kliniken", "Versicherung AG", "Bau GmbH",
    "Stadtwerke", "Brauerei KG", "Textil GmbH", "Software AG", "Druckerei GmbH",
    "Spedition KG", "Energie AG", "Pharma GmbH", "Bank eG", "Hotels GmbH",
)  # fmt: skip
_SERVERS = (
    "ProLiant DL380 Gen11", "ProLiant DL360 Gen11", "ProLiant ML350 Gen11",
    "Synergy 480 Gen10", "Alletra 6010", "MSA 2060", "Apollo 4200 Gen10 Plus",
)  # fmt: skip
_HOST_MODEL = "ProLiant DL20 Gen11 (Insight RS hosting device)"
PC_MODELS = (
    "HP EliteBook 840 G11", "HP ZBook Firefly 14 G11", "HP EliteDesk 800 G9",
    "HP ProBook 450 G10",
)  # fmt: skip


@dataclass(frozen=True)
class DemoCustomer:
    """One demo customer: its devices, its partners, and what it did with consent.

    `reseller`: the Location ID linked as reseller to its servers; `service`: whether
    SERVICE_PARTNER is linked as service partner to them (and to its Insight RS host).
    `pcs`: PCs reported through e2Open into `pc_partner`'s holding tenant; with a
    `dashboard`, the first two are transferred into it and `enrolled_pc` is enrolled by cPIN.
    """

    index: int
    customer_id: str
    name: str
    slug: str
    reseller: str
    service: bool
    host: str | None
    central: tuple[str, ...]
    direct: tuple[str, ...]
    pcs: tuple[str, ...]
    enrolled_pc: str | None
    pc_partner: str
    dashboard: bool
    models: dict[str, str]
    first_wording: tuple[str, ...]  # direct servers granted on the 2024-01 wording first
    consent: tuple[str, ...]  # direct servers granted on the current wording
    withdrawn: tuple[str, ...]  # ... of which consent was withdrawn later
    regranted: tuple[str, ...]  # ... and granted again (a new period)
    host_consent: bool
    host_withdrawn: bool
    insight_rs_to_service: bool

    @property
    def admin(self) -> Claims:
        """The customer's IT admin."""
        return customer_admin(self.customer_id, self.slug)

    @property
    def servers(self) -> tuple[str, ...]:
        """Every server and storage system: host, central-connect, direct-connect."""
        return (*((self.host,) if self.host else ()), *self.central, *self.direct)

    @property
    def cpin(self) -> str:
        """The company PIN of its customer dashboard."""
        return f"{4711 + self.index:04d}"

    def end_user(self, serial: str) -> Claims:
        """The person working on one of its PCs."""
        return end_user(self.customer_id, self.slug, serial)


def plan(customers: int = FULL_SIZE) -> list[DemoCustomer]:
    """The first `customers` demo customers (at least 2: ACME and Globex come first)."""
    if customers < 2:
        raise ValueError("The demo needs at least 2 customers.")
    names: set[str] = set()
    return [_customer(i, random.Random(SEED * 1_000 + i), names) for i in range(customers)]


def _customer(i: int, rng: random.Random, names: set[str]) -> DemoCustomer:
    # The rarer stories go by index, so that a small demo (tests) has each of them too;
    # each one is a command, and commands are what seeding spends its time on.
    customer_id, name, slug = _identity(i, rng, names)
    host = f"HRS{i:04d}" if i % 2 == 0 else None
    central = tuple(f"CZC{i:04d}{n}" for n in range(CENTRAL_PER_HOST)) if host else ()
    servers = DEVICES_PER_CUSTOMER - PCS_PER_CUSTOMER - len(central) - (1 if host else 0)
    direct = tuple(f"CZJ{i:04d}{n:02d}" for n in range(servers))
    pcs = tuple(f"5CG{i:04d}{n}" for n in range(1, PCS_PER_CUSTOMER + 1))
    dashboard = i % 10 == 0
    reseller = RESELLER if i == 0 or rng.random() < 0.6 else RESELLER_2
    service = i == 0 or rng.random() < 0.5
    consent = tuple(s for s in direct if rng.random() < 0.6) or direct[:1]
    models = {s: rng.choice(_SERVERS) for s in (*central, *direct)}
    models |= {s: rng.choice(PC_MODELS) for s in pcs}
    if host:
        models[host] = _HOST_MODEL
    return DemoCustomer(
        index=i,
        customer_id=customer_id,
        name=name,
        slug=slug,
        reseller=reseller,
        service=service,
        host=host,
        central=central,
        direct=direct,
        pcs=pcs[:-1] if dashboard else pcs,
        enrolled_pc=pcs[-1] if dashboard else None,
        pc_partner=RESELLER if reseller == RESELLER else SERVICE_PARTNER,
        dashboard=dashboard,
        models=models,
        first_wording=consent[:2] if i % 5 == 0 else (),
        consent=consent,
        withdrawn=consent[-2:] if i % 5 == 2 else (),
        regranted=consent[-1:] if i % 10 == 2 else (),
        host_consent=host is not None and i % 8 != 6,
        host_withdrawn=host is not None and i % 20 == 4,
        insight_rs_to_service=service and i % 4 == 0,
    )


def _identity(i: int, rng: random.Random, names: set[str]) -> tuple[str, str, str]:
    if i == 0:
        return CUSTOMER, "ACME Manufacturing", "acme"
    if i == 1:
        return CUSTOMER_2, "Globex Logistics", "globex"
    name = f"{rng.choice(_PREFIXES)} {rng.choice(_KINDS)}"
    if name in names:
        name = f"{name} {i:03d}"
    names.add(name)
    return f"DEMO-C{i:04d}", name, f"c{i:04d}"


def service_levels(serial: str, rng: random.Random) -> list[ServiceLevel]:
    """R-SVC-3: a warranty, often a Care Pack, sometimes an expired support agreement."""
    starts = TODAY - timedelta(days=rng.randrange(30, 900))
    levels = [ServiceLevel("warranty", "HPE 3-year warranty", starts, _years(starts, 3))]
    if rng.random() < 0.35:
        levels.append(
            ServiceLevel("care_pack", "HPE Foundation Care 24x7", starts, _years(starts, 5))
        )
    if rng.random() < 0.15:
        old = starts - timedelta(days=400)
        levels.append(ServiceLevel("support_agreement", "HPE Datacenter Care (ended)", old, starts))
    return levels


def _years(start: date, years: int) -> date:
    return start + timedelta(days=365 * years)


SERVICE_EVENTS = (
    ("critical", "Power supply 2 failed; system running on one supply"),
    ("critical", "Smart Array controller reports a failed drive in bay 3"),
    ("warning", "Fan 4 speed degraded"),
    ("warning", "Memory module DIMM 7: correctable errors above threshold"),
    ("info", "Firmware update available for iLO 6"),
    ("info", "Scheduled health check completed"),
)

ALERTS = (
    ("critical", "Battery failure predicted within 30 days"),
    ("warning", "SSD wear level at 90 %"),
    ("critical", "Thermal event: CPU throttled repeatedly"),
    ("info", "BIOS update available"),
)

__all__ = ["END_USER_PC", "FULL_SIZE", "DemoCustomer", "plan"]
