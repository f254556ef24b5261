"""Recently used aggregates kept in memory at a known version (issue 11).

A bounded LRU of aggregates as last saved or loaded, each held as a private copy made when
it is put (`handlers.private_copy`, a deep copy sharing only immutable values): a hit gives
the caller a private copy of its own (`get`), so nobody mutates what is cached, and a
command that is refused leaves the cache as stored (what it borrowed goes, below). After a
save, a command whose
result holds none of its aggregates gives them up to the cache (`adopt`: kept as they are,
no copy; they were the command's own copies and nothing else holds them), and gives back
the copies of those it only read (`give_back`: kept as spares at the entry's version, each
handed out once by a later `get` instead of a new copy; a partner read by most commands is
copied once per command no more; session 22). A command borrows (`borrow`, session 23):
an entry a command changed last (`adopt`) is lent to the next command itself, not copied,
while nobody else holds it (no one gets it, or a copy of it, while it is lent), and comes
back changed (`adopt` again) or as it was (`give_back`); a command that fails gives it up
(`release`: the entry goes); see `borrow`. (Session 17:
copies, not pickled bytes: a copy costs a quarter of a pickle round trip for a device,
two thirds for a group of 60 devices.) Correctness never depends on it: a
command that decided on a cached aggregate saves against that aggregate's version, so a
stale entry makes the save conflict (a unique violation for what it wrote, the recorder's
`read_versions` check for what it only read), and the command evicts what it touched and
retries from the store (handlers/base.py, `FleetApplication._attempt`).

Shapes: keys are aggregate ids (held by their 128-bit integers, `UUID.int`: an int's hash
is C's, a UUID's a Python call of about 1,200 instructions, and a command asks the cache
of each aggregate it touches four or five times; session 22). An id that is no UUID (its
text, say, which the store takes) names no entry, as when entries were keyed by the ids
themselves: `get` and `version_of` report it missing (the caller reads the store), `touch`
and `evict` pass it by (not an AttributeError; attack 2, session 22). `put` keeps the entry with
the higher version when two threads put the same aggregate; `maxsize` counts aggregates
(0 turns the cache off).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from handlers.private_copy import private_copy

# Settings' AGGREGATE_CACHE_SIZE reaches the application under this key of its environment.
CACHE_SIZE_ENV = "FLEET_AGGREGATE_CACHE_SIZE"
DEFAULT_SIZE = 10_000  # a few MB: a cached device or group is 1-3 KB in memory
# Spare copies kept per entry at most (`give_back`): as many as commands of a process
# read one aggregate at once, about; each is one more copy in memory.
MAX_SPARES = 4


class AggregateCache:
    """Bounded LRU of private copies of aggregates by id, each at the version it was stored
    with. Nobody outside holds a cached copy: `put` copies in (`adopt` takes what its
    caller gives up), `get` copies out, or hands out a spare copy given back
    (`give_back`), which nobody else holds either; `borrow` lends an entry to one command,
    and nobody else gets it, or a copy of it, until it comes back or goes."""

    def __init__(self, maxsize: int = DEFAULT_SIZE) -> None:
        self.maxsize = maxsize
        # By `aggregate_id.int` (see the module's docstring).
        self._entries: OrderedDict[int, tuple[int, Any]] = OrderedDict()
        # Private copies given back (`give_back`) at their entry's version, by the same
        # keys; dropped whenever their entry is replaced or goes.
        self._spares: dict[int, list[Any]] = {}
        # Entries a command changed last (`adopt`): lent by `borrow` while nobody holds them.
        self._lendable: set[int] = set()
        # Entries whose object a command holds now (`borrow`): not copied, not handed out,
        # until it comes back (`give_back`, `release`) or the entry is replaced or goes.
        self._lent: set[int] = set()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, aggregate_id: object) -> bool:
        return isinstance(aggregate_id, UUID) and aggregate_id.int in self._entries

    def version_of(self, aggregate_id: UUID) -> int | None:
        """The cached version of an aggregate, or None when it is not cached (or the id is
        no UUID)."""
        entry = self._entries.get(getattr(aggregate_id, "int", -1))  # (no UUID: -1, no key)
        return None if entry is None else entry[0]

    def get(self, aggregate_id: UUID) -> Any | None:
        """A private copy of the cached aggregate (most recently used from now), or None:
        a spare given back (`give_back`) when there is one, else a new copy.

        An adopted aggregate found changed since (a later version, or events pending: its
        giver kept a hold on it after all) is forgotten and reported missing; a spare
        found so is dropped. An id that is no UUID is reported missing, and so is an entry
        lent to a command (`borrow`) when no spare is left: the command may be changing
        it, so it is not copied."""
        return self._take(aggregate_id, lend=False)

    def borrow(self, aggregate_id: UUID) -> Any | None:
        """For a command (handlers/base.py, `Working`): as `get`, but an entry a command
        changed last (`adopt`) and nobody holds is lent itself, not copied: the cache
        keeps its version (`version_of`) and hands it to nobody else (`get` and `borrow`
        find a spare or nothing) until the borrower brings it back, changed (`adopt`,
        `put`) or not (`give_back`), or fails (`release`: the entry goes). An entry found
        lent is a miss (the caller reads the store), and is not lent again until a
        command changes it: two commands want it at once, so copies serve it better (a
        partner read by most commands). Nothing is copied for a borrowed entry: a device
        or a customer group changed by one command after another (session 23: 9.2 % of
        the instructions per command with 8 client threads)."""
        return self._take(aggregate_id, lend=True)

    def _take(self, aggregate_id: UUID, *, lend: bool) -> Any | None:
        """`get` (lend False) or `borrow` (True)."""
        key = getattr(aggregate_id, "int", -1)  # (no UUID: -1, no key)
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            held = entry[1]
            lent = key in self._lent
            if not lent and (held.version != entry[0] or held.pending_events):
                self._forget(key)  # (changed since: see `get`)
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            spare = self._spare(key, entry[0])
            if spare is None and lent:  # a command holds it, and may be changing it
                self._lendable.discard(key)  # (not copied, not lent again)
                self.misses += 1
                return None
            self.hits += 1
            if spare is not None:
                return spare
            if key in self._lendable:
                if lend:
                    self._lent.add(key)
                    return held
                # Copied outside the lock: not lent meanwhile, nor later (a borrower
                # would change it in place as it is copied; attack, session 23).
                self._lendable.discard(key)
        return private_copy(held)  # outside the lock: nobody changes it in place now

    def _spare(self, key: int, version: int) -> Any | None:
        """A spare of the entry (under the lock): a copy given back at `version`, never
        handed out since; one changed since after all is dropped (as an adopted aggregate
        found changed in `_take`)."""
        spares = self._spares.get(key)
        while spares:
            spare = spares.pop()
            if spare.version == version and not spare.pending_events:
                return spare
        return None

    def put(self, aggregates: Iterable[Any]) -> None:
        """Keep private copies of these aggregates (no pending events) at their versions;
        an entry already at a higher version stays. The least recently used entries go
        beyond `maxsize`."""
        if self.maxsize <= 0:
            return
        self._keep([(*_id_and_version(a), private_copy(a)) for a in aggregates])

    def adopt(self, aggregates: Iterable[Any], *, changed: bool = True) -> None:
        """As `put`, keeping the aggregates themselves, not copies: for a caller giving
        them up, who holds no reference to them afterwards, and lets none escape (a
        command's `Working` after its save, handlers/base.py). Nothing changes them in
        place from then on but a command that borrows one (`borrow`); `get` gives out
        copies only. `changed`: the caller changed them, so `borrow` lends them next;
        False (read only: a partner most commands read at once), it copies them."""
        if self.maxsize <= 0:
            return
        self._keep([(*_id_and_version(a), a) for a in aggregates], lendable=changed)

    def give_back(self, aggregates: Iterable[Any]) -> None:
        """Take back private copies that `get` gave out, from a caller giving them up who
        holds no reference to them afterwards and changed none of them (no pending events,
        the version it got): each is kept as a spare of its entry while the entry stays at
        that version (at most MAX_SPARES an entry), and the next `get` hands it out instead
        of making a copy. A copy of another version, or of an aggregate no longer cached,
        is dropped. An entry lent (`borrow`) and given back is its entry again, no longer
        lent. The entries count as just used (as `touch`)."""
        if self.maxsize <= 0:
            return
        given = [(*_id_and_version(a), a) for a in aggregates if not a.pending_events]
        with self._lock:
            for key, version, copy in given:
                held = self._entries.get(key)
                if held is None or held[0] != version:
                    continue
                self._entries.move_to_end(key)
                if held[1] is copy:  # the entry itself, lent: back
                    self._lent.discard(key)
                    continue
                spares = self._spares.setdefault(key, [])
                if len(spares) < MAX_SPARES:
                    spares.append(copy)

    def release(self, aggregates: Iterable[Any], *, kept: bool = False) -> None:
        """Take back what `borrow` lent to a command that does not give it back through
        `adopt` or `give_back`. A command that failed (refused, conflicted, interrupted;
        handlers/base.py): each entry it borrowed goes, changed or not, since a refusal may
        have changed its state without an event (session 20's attack: the cache must
        stay as stored); the next command reads the store. `kept`: a command that saved and
        keeps them (its result may hold them): an entry it left unchanged (its version, no
        pending events) is replaced by a private copy, as `put` keeps one; a changed one
        goes. Anything else given (copies, spares, what is no longer lent) is passed by."""
        if self.maxsize <= 0:
            return
        copies: list[tuple[int, int, Any]] = []
        with self._lock:
            for aggregate in aggregates:
                key = getattr(aggregate.id, "int", -1)
                if key not in self._lent:
                    continue
                held = self._entries.get(key)
                if held is None or held[1] is not aggregate:
                    continue
                if kept and aggregate.version == held[0] and not aggregate.pending_events:
                    copies.append((key, held[0], aggregate))
                else:
                    self._forget(key)
        if copies:  # (copied outside the lock, as `put` copies; lent until replaced)
            self._keep([(key, version, private_copy(a)) for key, version, a in copies])

    def _keep(self, entries: list[tuple[int, int, Any]], *, lendable: bool | None = None) -> None:
        """Keep `(aggregate_id.int, version, aggregate)` entries (see `put`); `lendable`:
        whether `borrow` may lend them (`adopt`; None: as it was)."""
        with self._lock:
            for key, version, state in entries:
                held = self._entries.get(key)
                if held is not None and held[0] > version:
                    continue
                self._entries[key] = (version, state)
                self._entries.move_to_end(key)
                self._spares.pop(key, None)
                self._lent.discard(key)
                if lendable:
                    self._lendable.add(key)
                elif lendable is not None:
                    self._lendable.discard(key)
            while len(self._entries) > self.maxsize:
                self._forget(next(iter(self._entries)))  # the least recently used

    def _forget(self, key: int) -> None:
        """Drop an entry and all that goes with it (under the lock)."""
        self._entries.pop(key, None)
        self._spares.pop(key, None)
        self._lent.discard(key)
        self._lendable.discard(key)

    def touch(self, ids: Iterable[UUID]) -> None:
        """Mark cached entries as just used (an aggregate a command read and did not change)."""
        with self._lock:
            for aggregate_id in ids:
                key = getattr(aggregate_id, "int", -1)  # (no UUID: -1, never a UUID.int)
                if key in self._entries:
                    self._entries.move_to_end(key)

    def evict(self, ids: Iterable[UUID]) -> None:
        """Forget these aggregates (after a conflict: the store has a newer version)."""
        with self._lock:
            for aggregate_id in ids:
                self._forget(getattr(aggregate_id, "int", -1))  # (no UUID: -1, no key)

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
            self._spares.clear()
            self._lent.clear()
            self._lendable.clear()


def _id_and_version(aggregate: Any) -> tuple[int, int]:
    """`(aggregate.id.int, aggregate.version)`: an entry's key and version."""
    return aggregate.id.int, aggregate.version
