"""Attack on session 22's cache keyed by `UUID.int`: an id that is no UUID.

Before session 22 the cache's dict was keyed by the ids themselves, so an id given as its
text (`str(uuid)`) was simply not found there: a miss, and the command or read went on to
the store, which takes the text. Keyed by `aggregate_id.int`, the same call raised
AttributeError ('str' object has no attribute 'int'): a command given a group id as text
failed with the cache on and was accepted with it off. The cache again reports such an id
missing (and touching or evicting it does nothing), at no cost on the UUID path.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from domain import CustomerGroup, Device
from handlers import PartnerFleet
from handlers.access import Actor
from handlers.aggregate_cache import AggregateCache
from tests.actors import partner_user
from tests.read_versions import caching_fleet
from tests.scenarios import OPS, partner, report


def a_cache_holding_a_device() -> tuple[AggregateCache, UUID]:
    cache = AggregateCache(10)
    device = Device.register(OPS, serial="S9", connection="direct_connect", customer_id="C9")
    device.collect_events()
    cache.put([device])
    return cache, device.id


@pytest.mark.parametrize("other", [str, lambda i: i.hex, lambda i: None, lambda i: i.int])
def test_s22_attack2_an_id_that_is_no_uuid_is_missing_from_the_cache(other: object) -> None:
    cache, device_id = a_cache_holding_a_device()
    given = other(device_id)  # type: ignore[operator]
    assert cache.get(given) is None
    assert cache.version_of(given) is None
    assert given not in cache
    cache.touch([given])
    cache.evict([given])
    assert cache.version_of(device_id) == 1  # the entry itself stays
    assert cache.get(device_id) is not None


def dashboard_world(app: PartnerFleet) -> tuple[Actor, UUID]:
    partner(app, "LOC-1")
    anna = partner_user(app, "LOC-1", "anna@LOC-1")
    app.receive_e2open_batch(OPS, "b1", [report("PC1")])
    dashboard = app.create_customer_dashboard(anna, "LOC-1", "C1", "Customer One", "4711")
    return anna, dashboard


@pytest.mark.parametrize("caching", [False, True], ids=["no cache", "cache"])
def test_s22_attack2_a_group_id_given_as_text_is_the_same_command_with_the_cache(
    caching: bool,
) -> None:
    app = caching_fleet() if caching else caching_fleet(cache_size=0)  # (0: the cache off)
    assert app.caches_aggregates is caching
    anna, dashboard = dashboard_world(app)
    text: Any = str(dashboard)  # (the commands say UUID; the store takes the text too)
    app.add_favourite(anna, text)
    app.switch_self_service_notifications(anna, "LOC-1", text, True)
    group = app.current(CustomerGroup, text)
    assert group is not None
    assert group.favourite_of == ["anna@LOC-1"]
    assert group.self_service_notifications
    assert app.current_at(CustomerGroup, text, group.version) is not None
