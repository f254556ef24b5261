"""Bodies of list pages remembered while the read models stand still (issue 11).

A page's body is a function of who asks (the partner scope and principal), what they ask
(route, path, filters, cursor, limit) and the state of the read models. The views' state
is named by their positions (pf_tracking): a view's rows and its position commit in one
transaction, so equal positions mean equal rows. A route reads the positions first, in
the same read as its query (`read_positions`, one round trip), and keys the body by
all three; a body built after the positions were read shows at least that state.

What this guarantees:
- never another principal's page: the key holds the scope and the principal, and the
  route reaches the cache only after authentication and the scope check (401/403/404
  come first, from the store, on every request);
- never older than the caller's own writes: `Partnerfleet-Wait-For` is waited for
  before the positions are read, so a hit's positions are at or past the caller's;
- any event applied to any view changes the key (a rebuild resets positions to an
  earlier state the same events rebuild). Errors are never remembered.

Positions name states of one read-model database, so each database has a cache of its
own (`PageCaches.of`): an application put over other read models (tests rebind one app to
a fresh store per example) never meets the bodies of the former ones.

`PAGE_CACHE_SIZE` (Settings.page_cache_size, default 1,024 bodies; 0 turns it off) bounds
the number of bodies, and `MAX_BYTES` (32 MiB per database) their bytes: least recently used
bodies go first, and a body larger than the budget is answered but not kept. The byte
budget matters because any query parameter is part of the key: one user sending `limit=200`
with a new junk parameter each time could otherwise keep 1,024 bodies of ~50-200 KB each
(session 16 attack). Each process keeps its own.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable

MAX_BYTES = 32 * 1024 * 1024  # of bodies per page cache


class PageCache:
    """At most `size` page bodies (bytes) by key and `max_bytes` of them together, least
    recently used out first. ValueError for a negative size or budget."""

    def __init__(self, size: int, max_bytes: int = MAX_BYTES) -> None:
        if size < 0:
            raise ValueError(f"a page cache holds 0 or more bodies, not {size}")
        if max_bytes < 0:
            raise ValueError(f"a page cache holds 0 or more bytes, not {max_bytes}")
        self.size, self.max_bytes = size, max_bytes
        self.bytes = 0  # of the bodies kept
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        """The body remembered under `key` (counted as a hit), or None (not counted)."""
        with self._lock:
            found = self._bodies.get(key)
            if found is not None:
                self._bodies.move_to_end(key)
                self.hits += 1
            return found

    def body(self, key: Hashable, make: Callable[[], bytes]) -> bytes:
        """The body remembered under `key`, else `make()`'s (remembered when it returns;
        an exception leaves nothing behind and propagates)."""
        if self.size == 0:
            return make()
        found = self.get(key)
        if found is not None:
            return found
        with self._lock:
            self.misses += 1
        made = make()
        if len(made) > self.max_bytes:  # answered, never kept
            return made
        with self._lock:
            former = self._bodies.pop(key, None)  # built twice at once: keep one
            self.bytes -= 0 if former is None else len(former)
            self._bodies[key] = made
            self.bytes += len(made)
            while len(self._bodies) > self.size or self.bytes > self.max_bytes:
                self.bytes -= len(self._bodies.popitem(last=False)[1])
        return made

    def __len__(self) -> int:
        return len(self._bodies)


class PageCaches:
    """One `PageCache` of `size` bodies per read-model database, dropped with it."""

    def __init__(self, size: int) -> None:
        PageCache(size)  # the same check of `size`, before any database asks
        self.size = size
        self._caches: weakref.WeakKeyDictionary[object, PageCache] = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def of(self, db: object) -> PageCache:
        """The cache of the read models in `db` (made on first use)."""
        with self._lock:
            cache = self._caches.get(db)
            if cache is None:
                cache = self._caches[db] = PageCache(self.size)
            return cache
