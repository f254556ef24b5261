"""The All Customers page's body cache (infra/http/page_cache.py): kept per principal and
request while the read models stand still; never another tenant's or user's page, never
older than the caller's own writes, never an error."""

from __future__ import annotations

from typing import Any

import pytest

from infra.http.page_cache import PageCache, PageCaches
from tests.unit.test_http_customers import C1, C2, GROUPS, world


def cache_of(w: Any) -> PageCache:
    """The API's page cache."""
    caches: PageCaches = w.api.app.state.page_caches
    return caches.of(w.api.app.state.views.db)


def body(answer: Any) -> dict[str, Any]:
    """A 200 answer's JSON."""
    assert answer.status_code == 200, answer.text
    parsed: dict[str, Any] = answer.json()
    return parsed


def test_the_same_page_twice_is_built_once_and_is_the_same_body() -> None:
    w = world()
    first = w.call("GET", GROUPS, "anna")
    second = w.call("GET", GROUPS, "anna")

    assert second.content == first.content
    assert (cache_of(w).misses, cache_of(w).hits) == (1, 1)
    assert second.headers["content-type"] == "application/json"


def test_a_write_read_back_with_its_position_shows_the_write() -> None:
    """Read-your-writes: Ben's favourite moves the views, so the next page is built again."""
    w = world()
    before = body(w.call("GET", GROUPS, "ben"))
    marked = w.call("POST", "/partners/LOC-1/me/favourites", "ben", json={"group_id": str(C2)})
    assert marked.status_code in (200, 201), marked.text

    after = body(w.call("GET", GROUPS, "ben"))  # World.call sends Partnerfleet-Wait-For

    assert [t["favourite"] for t in before["items"]] == [False, False]
    assert [t["favourite"] for t in after["items"]] == [False, True]
    assert after["favorites_only_available"]
    assert cache_of(w).hits == 0


def test_each_user_gets_their_own_page_from_the_cache() -> None:
    """Anna and Ben of the same partner: Ben's favourite is on Ben's page only, whoever
    asked first and however often."""
    w = world()
    w.call("POST", "/partners/LOC-1/me/favourites", "ben", json={"group_id": str(C1)})
    for _ in range(2):
        anna = body(w.call("GET", GROUPS, "anna"))
        ben = body(w.call("GET", GROUPS, "ben"))
        assert [t["favourite"] for t in anna["items"]] == [False, False]
        assert [t["favourite"] for t in ben["items"]] == [True, False]
    assert cache_of(w).hits == 2


def test_another_tenant_is_refused_before_the_cache_and_sees_its_own_page() -> None:
    """LOC-1's page cached: LOC-2's admin asking for it is 404, as without a cache, and
    LOC-2's own page shows only its customer."""
    w = world()
    body(w.call("GET", GROUPS, "anna"))

    stolen = w.call("GET", GROUPS, "otto")
    own = body(w.call("GET", "/partners/LOC-2/customer-groups", "otto"))
    nobody = w.call("GET", GROUPS, "nobody")

    assert stolen.status_code == 404
    assert "Acme" not in stolen.text
    assert [t["customer_id"] for t in own["items"]] == ["C9"]
    assert nobody.status_code == 401
    assert cache_of(w).hits == 0


def test_filters_cursor_and_limit_are_part_of_the_key() -> None:
    w = world()
    full = body(w.call("GET", GROUPS, "anna"))
    searched = body(w.call("GET", GROUPS, "anna", params={"search": "glob"}))
    one = body(w.call("GET", GROUPS, "anna", params={"limit": 1}))
    two = body(w.call("GET", GROUPS, "anna", params={"limit": 1, "cursor": one["next_cursor"]}))

    assert [t["name"] for t in full["items"]] == ["Acme", "Globex"]
    assert [t["name"] for t in searched["items"]] == ["Globex"]
    assert [t["name"] for t in one["items"] + two["items"]] == ["Acme", "Globex"]
    assert cache_of(w).hits == 0


def test_a_refused_request_is_not_remembered() -> None:
    """Favorites Only without a favourite is refused each time; nothing is cached for it."""
    w = world()
    for _ in range(2):
        refused = w.call("GET", GROUPS, "anna", params={"view": "favorites_only"})
        assert refused.status_code == 409, refused.text  # R-FAV-3
    assert len(cache_of(w)) == 0


def test_the_cache_keeps_at_most_its_size_least_recently_used_out() -> None:
    cache = PageCache(2)
    made: list[str] = []

    def make(name: str) -> bytes:
        made.append(name)
        return name.encode()

    assert cache.body("a", lambda: make("a")) == b"a"
    assert cache.body("b", lambda: make("b")) == b"b"
    assert cache.body("a", lambda: make("a")) == b"a"  # a is now the most recent
    assert cache.body("c", lambda: make("c")) == b"c"  # b goes
    assert cache.body("b", lambda: make("b")) == b"b"

    assert made == ["a", "b", "c", "b"]
    assert len(cache) == 2


def test_a_cache_of_size_0_keeps_nothing_and_an_error_leaves_nothing() -> None:
    off = PageCache(0)
    assert off.body("k", lambda: b"x") == b"x"
    assert len(off) == 0

    cache = PageCache(4)

    def fail() -> bytes:
        raise RuntimeError("query failed")

    with pytest.raises(RuntimeError):
        cache.body("k", fail)
    assert len(cache) == 0
    assert cache.body("k", lambda: b"built") == b"built"
    with pytest.raises(ValueError, match="0 or more"):
        PageCache(-1)


def test_other_read_models_behind_the_same_app_get_a_cache_of_their_own() -> None:
    """Positions name states of one database: an app put over a fresh store (as the no-leak
    property test does per example) never answers from the former store's bodies, even at
    the same positions (Ben's one favourite is C1 in the first store, C2 in the second)."""
    first, second = world(), world()
    for w, group in ((first, C1), (second, C2)):
        marked = w.call(
            "POST", "/partners/LOC-1/me/favourites", "ben", json={"group_id": str(group)}
        )
        assert marked.status_code in (200, 201), marked.text
    assert body(first.call("GET", GROUPS, "ben"))["items"][0]["favourite"]
    app: Any = first.api.app
    app.state.fleet, app.state.views = second.fleet, second.api.app.state.views  # type: ignore[attr-defined]

    again = body(first.call("GET", GROUPS, "ben"))

    assert [t["favourite"] for t in again["items"]] == [False, True]
    assert cache_of(first).hits == 0


class _DB:
    """Stands for a read-model database."""


def test_one_cache_per_database_of_the_size_asked() -> None:
    caches, one, other = PageCaches(3), _DB(), _DB()

    assert caches.of(one) is caches.of(one)
    assert caches.of(one) is not caches.of(other)
    assert caches.of(other).size == 3
    with pytest.raises(ValueError, match="0 or more"):
        PageCaches(-1)
