"""The page's plain path on PostgreSQL (infra/http/routes/customers.py, `plain_groups_page`):
the partner's last stored version is read in the same query as the views' positions
(`Reads.positions_and_version`), and `authenticate` takes the partner from the aggregate
cache only when it is cached at exactly that version. Every answer must be the one the
route's dependencies give (which read the partner from the store), a membership recorded by
another process must count on the next request, and a page hit must not ask the store
for the partner's events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from domain.partner import PartnerTenant
from handlers.access import Claims
from infra.bootstrap import build_fleet, build_view_db
from infra.http.routes import customers
from infra.settings import Settings
from tests.read_versions import events_reads
from tests.scenarios import OPS
from tests.unit.test_http_customers import GROUPS, TOKENS, World, world
from tests.unit.test_http_plain_path import FORMS

pytestmark = pytest.mark.postgres


@pytest.fixture(params=["thread", "loop"])
def pg_world(postgres_settings: Settings, request: pytest.FixtureRequest) -> Iterator[World]:
    """The world on PostgreSQL; its page's plain path in a worker thread, or on the event
    loop (LoopReads, session 19: taken only when the verifier never waits, as a JWKS file's)."""
    fleet = build_fleet(postgres_settings)
    made = world(fleet, build_view_db(postgres_settings))
    state = made.api.app.state  # type: ignore[attr-defined]
    state.verifier.never_waits = request.param == "loop"
    state.views.catch_up()
    yield made
    if state.loop_reads is not None:
        state.loop_reads.close()
    state.views.db.close()
    fleet.close()


async def declined(request: Any) -> None:
    """A plain_list taking no request: the route's dependencies answer every one."""
    return


def get(w: World, path: str, token: str | None) -> tuple[int, dict[str, str], Any]:
    headers = {"X-Request-Id": "0b7e6c1e-7e0b-4c1e-9b7e-000000000002"}
    if token is not None:
        headers["Authorization"] = token
    answer = w.api.get(path, headers=headers)
    return answer.status_code, dict(answer.headers), answer.content


def test_the_store_events_are_read_with_the_positions_on_postgresql(pg_world: World) -> None:
    table = pg_world.api.app.state.events_table  # type: ignore[attr-defined]
    schema = pg_world.fleet.recorder.datastore.schema  # type: ignore[attr-defined]

    assert table == f'"{schema}"."partnerfleet_events"'


@pytest.mark.parametrize(("path", "token", "status"), FORMS)
def test_every_form_is_answered_as_the_dependencies_answer_it(
    pg_world: World, monkeypatch: pytest.MonkeyPatch, path: str, token: str | None, status: int
) -> None:
    """With the partner's version read beside the positions, and without (the route's
    dependencies: authenticate reads the partner from the store); twice each. PlainFront
    offers the request to the plain path first, which declines: the route answers."""
    state = pg_world.api.app.state  # type: ignore[attr-defined]
    for _ in range(2):
        combined = get(pg_world, path, token)
        table, state.events_table = state.events_table, None
        try:
            with monkeypatch.context() as patched:
                patched.setattr(customers, "plain_list", declined)
                routed = get(pg_world, path, token)
        finally:
            state.events_table = table
        assert combined[0] == status
        assert combined == routed


def test_a_page_hit_asks_the_store_for_no_events(
    pg_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert get(pg_world, GROUPS, "Bearer anna")[0] == 200  # the partner cached, the page too
    seen = events_reads(pg_world.fleet, monkeypatch)

    again = [get(pg_world, GROUPS, "Bearer anna")[0] for _ in range(3)]

    assert again == [200, 200, 200]
    assert seen == []


def test_a_user_another_process_registers_is_admitted_at_once(
    pg_world: World, postgres_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """This process's cached partner is a version behind the store: the version read with
    the positions says so, and the partner is read from the store (never the stale copy)."""
    monkeypatch.setitem(TOKENS, "zed", Claims("zed@LOC-1", "partner_user", "LOC-1"))
    partner_id = PartnerTenant.id_for("LOC-1")
    assert get(pg_world, GROUPS, "Bearer anna")[0] == 200
    cached = pg_world.fleet.aggregate_cache.version_of(partner_id)
    refused = get(pg_world, GROUPS, "Bearer zed")
    other = build_fleet(postgres_settings)  # another serving process
    try:
        other.register_partner_user(OPS, "LOC-1", "zed@LOC-1")
    finally:
        other.close()
    pg_world.api.app.state.views.catch_up()  # type: ignore[attr-defined]
    seen = events_reads(pg_world.fleet, monkeypatch)

    admitted = get(pg_world, GROUPS, "Bearer zed")
    anna = get(pg_world, GROUPS, "Bearer anna")

    assert cached is not None
    assert refused[0] == 401, refused
    assert admitted[0] == 200, admitted
    assert admitted[0] == 200
    assert b"Acme" in admitted[2]
    assert anna[0] == 200
    assert seen == [partner_id]  # once, for zed: then cached at the stored version
    assert pg_world.fleet.aggregate_cache.version_of(partner_id) == cached + 1


def test_a_partner_not_cached_is_read_from_the_store(
    pg_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    partner_id = PartnerTenant.id_for("LOC-1")
    pg_world.fleet.aggregate_cache = type(pg_world.fleet.aggregate_cache)()  # a cold cache
    seen = events_reads(pg_world.fleet, monkeypatch)

    first = get(pg_world, GROUPS, "Bearer ben")
    second = get(pg_world, GROUPS, "Bearer ben")

    assert (first[0], second[0]) == (200, 200)
    assert first[2] == second[2]
    assert seen == []  # loaded whole by the repository, not as events after a version
    assert pg_world.fleet.aggregate_cache.version_of(partner_id) is not None
