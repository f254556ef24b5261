"""Session 17, attack 2: the command path changes (private copies, adopt, raw-lock group
commit, packed arrays, the binder, checked actors), each probed with a test that fails
if the fault exists (docs/decisions.md, "Issue 11, attack on the command path changes")."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import decimal
import enum
import inspect
import itertools
import os
import pickle
import signal
import threading
import uuid

import pytest
from eventsourcing.persistence import StoredEvent

from handlers.private_copy import private_copy
from infra.storage.group_commit import GroupCommitter, Signal, Unit


class Interrupted(BaseException):
    """What an operator's signal raises in the thread it lands in (as KeyboardInterrupt)."""


def stored_event() -> StoredEvent:
    return StoredEvent(uuid.uuid4(), 1, "tests:Event", b"{}")


def submit_in_thread(committer: GroupCommitter, unit: Unit) -> threading.Thread:
    thread = threading.Thread(target=committer.submit, args=(unit,), daemon=True)
    thread.start()
    return thread


def gated_committer(
    release: threading.Event, committed: list[Unit] | None = None
) -> GroupCommitter:
    """A committer without a window whose groups wait for `release`, then commit: each
    unit gets its place in the group as its id and is noted in `committed`."""

    def commit_group(units: list[Unit]) -> None:
        release.wait(10)
        for number, unit in enumerate(units):
            if committed is not None:
                committed.append(unit)
            unit.notification_ids = [number + 1]

    return GroupCommitter(commit_group, window_seconds=0)


# --- Group commit: an interrupt landing between taking a group and committing it ----------


def test_session17_a_leader_interrupted_after_taking_its_group_leaves_no_caller_waiting() -> None:
    """A leader takes its group (its own unit and a follower's) and a signal lands before
    the commit begins (at `_lead`'s first instruction). The follower must still be
    answered (its unit committed by a next leader, or refused), and a later save must
    return: the committer must not stay busy for ever with a group nobody commits."""
    committed: list[Unit] = []
    released = threading.Event()
    released.set()
    committer = gated_committer(released, committed)
    follower = Unit([stored_event()])
    callers: list[threading.Thread] = []
    original_gather, original_lead = committer._gather, committer._lead

    def gather_with_company() -> list[Unit]:
        committer._gather = original_gather  # type: ignore[method-assign]
        callers.append(submit_in_thread(committer, follower))  # queues behind the leader
        while follower not in committer._queue:
            pass
        return original_gather()

    def interrupted_lead(group: list[Unit], own: Unit | None = None) -> None:
        committer._lead = original_lead  # type: ignore[method-assign]
        raise Interrupted  # the signal lands before the commit's try

    committer._gather = gather_with_company  # type: ignore[method-assign]
    committer._lead = interrupted_lead  # type: ignore[method-assign]
    first = Unit([stored_event()])
    with pytest.raises(Interrupted):
        committer.submit(first)
    callers[0].join(5)
    later = submit_in_thread(committer, Unit([stored_event()]))
    later.join(5)

    assert not callers[0].is_alive(), "the follower of a group never committed waits for ever"
    assert follower in committed
    assert not later.is_alive(), "a save after the interrupted leader never returned"
    assert first not in committed
    assert committer._busy is False


def test_session17_a_follower_interrupted_after_its_raw_lock_was_taken_stalls_nothing() -> None:
    """A follower's wait is interrupted just after its raw lock was acquired, before the
    flag was raised again (the one window a `Signal` adds over an Event): handed the lead
    or not, the next callers must still commit."""

    class InterruptedSignal(Signal):
        __slots__ = ()

        def wait(self, timeout: float | None = None) -> bool:
            self._lock.acquire()
            raise Interrupted  # the flag stays down

    release = threading.Event()
    committer = gated_committer(release)
    leader = submit_in_thread(committer, Unit([stored_event()]))
    while not committer._busy:
        pass
    doomed = Unit([stored_event()], woken=InterruptedSignal())
    interrupted: list[BaseException] = []

    def doomed_caller() -> None:
        try:
            committer.submit(doomed)
        except Interrupted as error:
            interrupted.append(error)

    second = threading.Thread(target=doomed_caller, daemon=True)
    second.start()
    while doomed not in committer._queue:
        pass
    release.set()
    leader.join(10)
    second.join(10)
    later = [submit_in_thread(committer, Unit([stored_event()])) for _ in range(3)]
    for thread in later:
        thread.join(10)

    assert interrupted
    assert not any(thread.is_alive() for thread in later)
    assert committer._busy is False


# --- The binder against inspect ---------------------------------------------------------


def _signatures() -> list[inspect.Signature]:
    def a(self, actor, x, y=2, *, z, w=4): ...  # type: ignore[no-untyped-def]
    def b(self, actor, x, /, y): ...  # type: ignore[no-untyped-def]
    def c(self, actor, *args, k=1): ...  # type: ignore[no-untyped-def]
    def d(self, actor, x=None, **kwargs): ...  # type: ignore[no-untyped-def]
    def e(self, actor): ...  # type: ignore[no-untyped-def]
    def f(self, actor, *, only, also=None): ...  # type: ignore[no-untyped-def]
    def g(self, actor, x, y, z=3): ...  # type: ignore[no-untyped-def]

    return [inspect.signature(fn) for fn in (a, b, c, d, e, f, g)]


def _calls() -> list[tuple[tuple[object, ...], dict[str, object]]]:
    names = ["x", "y", "z", "w", "k", "only", "also", "self", "actor", "args", "kwargs", "q"]
    calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
    for count in range(5):
        args = tuple(range(count))
        calls.append((args, {}))
        for size in (1, 2, 3):
            for chosen in itertools.combinations(names, size):
                calls.append((args, {n: n for n in chosen}))
    return calls


def test_session17_the_binder_binds_as_inspect_or_leaves_the_call_to_it() -> None:
    """For every call shape (too many or too few positionals, repeated, unknown, keyword
    only, positional only, defaults, names of self and the actor): the binder's arguments
    are inspect's after `self` and the actor, defaults applied, and it never binds a call
    inspect refuses (its None hands the call to inspect, which raises its own TypeError)."""
    from handlers.base import _binder

    for signature in _signatures():
        bind = _binder(signature)
        for args, kwargs in _calls():
            try:
                bound = signature.bind("self", "actor", *args, **kwargs)
            except TypeError:
                expected = None
            else:
                bound.apply_defaults()
                expected = dict(list(bound.arguments.items())[2:])
            got = bind(args, dict(kwargs))
            if got is not None:
                assert expected is not None, (signature, args, kwargs, got)
                assert list(got.items()) == list(expected.items()), (signature, args, kwargs)


def test_session17_the_binder_binds_the_common_calls_itself() -> None:
    """The comparison above is not vacuous: the common shapes are bound by the binder."""
    from handlers.base import _binder

    a = _signatures()[0]
    assert _binder(a)((1,), {"z": 3}) == {"x": 1, "y": 2, "z": 3, "w": 4}
    assert _binder(a)((), {"x": 1, "z": 3, "w": 5}) == {"x": 1, "y": 2, "z": 3, "w": 5}


# --- Private copies of awkward state ------------------------------------------------------


class Colour(enum.Enum):
    RED = [1]  # a member whose value is mutable: shared, as deepcopy shares members


class Bits(enum.Flag):
    A = 1
    B = 2


class Tags(list):  # type: ignore[type-arg]
    """A builtin's subclass with state of its own."""

    def __init__(self, items: list[str], note: list[str]) -> None:
        super().__init__(items)
        self.note = note


class Name(str):
    __slots__ = ()


@dataclasses.dataclass(frozen=True)
class Frozen:
    label: str
    items: list[int]


@dataclasses.dataclass(frozen=True)
class FrozenShared:
    label: str
    when: datetime.date


@dataclasses.dataclass
class Node:
    name: str
    children: list[Node] = dataclasses.field(default_factory=list)
    parent: Node | None = None


class State:
    """An aggregate-like object holding every awkward kind at once."""

    def __init__(self) -> None:
        shared = [1, [2, 3]]
        self.a = shared
        self.b = {"held": shared, "alone": [4, {"deep": [5]}]}
        self.c = (shared, "text")
        self.frozen = Frozen("f", [1, 2])
        self.frozen_again = self.frozen
        self.frozen_shared = FrozenShared("s", datetime.date(2026, 1, 1))
        self.colour = Colour.RED
        self.bits = Bits.A | Bits.B
        self.tags = Tags(["x"], ["n"])
        self.name = Name("café")
        self.ordered = collections.OrderedDict([("k", [1])])
        self.default = collections.defaultdict(list, {"k": [2]})
        self.counter = collections.Counter({"a": 2})
        self.deque = collections.deque([[1], [2]])
        self.bytes = bytearray(b"\x00\xff")
        self.money = decimal.Decimal("1.10")
        self.ids = frozenset({uuid.UUID(int=1)})
        self.same_dict = {"k": [9]}
        self.same_dict_again = self.same_dict
        self.nested_alone = {"x": {"y": {"z": [1]}}}
        root = Node("root")
        child = Node("child", parent=root)
        root.children.append(child)
        self.tree = root  # a cycle: root -> children -> child -> parent -> root


@pytest.mark.parametrize("cycle", [True, False])
def test_session17_a_private_copy_keeps_sharing_and_cycles_and_shares_nothing_mutable(
    cycle: bool,
) -> None:
    """Aliasing (a list held twice, a frozen dataclass held twice), cycles, builtins'
    subclasses, enums and flags, frozen dataclasses with mutable fields: the copy has the
    original's shape, equals a pickle round trip field by field, and no mutable object
    of the original is reachable from the copy (mutating the copy leaves it unchanged)."""
    original = State()
    if not cycle:  # the walk itself, not deepcopy after a RecursionError
        original.tree.children.clear()
    made = private_copy(original)
    again = pickle.loads(pickle.dumps(original))

    assert made.a is made.b["held"], "a list held thrice is one list"
    assert made.c[0] is made.a
    assert made.frozen_again is made.frozen
    assert made.same_dict_again is made.same_dict
    assert not cycle or made.tree.children[0].parent is made.tree, "the cycle is kept"
    assert made.colour is Colour.RED
    assert made.bits is original.bits
    assert type(made.tags) is Tags
    assert made.tags.note == ["n"]
    assert made.tags == ["x"]
    assert type(made.name) is Name
    assert made.name == "café"
    assert made.default.default_factory is list
    assert type(made.default) is type(original.default)
    assert cycle or made.frozen_shared is original.frozen_shared  # immutable: shared
    for key in vars(original):
        if key != "tree":
            assert getattr(made, key) == getattr(again, key), key

    originals = {id(x) for x in _mutables(original)}
    reached = [x for x in _mutables(made) if id(x) in originals]
    assert not reached, f"the copy reaches mutable objects of the original: {reached[:3]}"


def _mutables(root: object) -> list[object]:
    """Every mutable object reachable from `root` (enum members and classes left out)."""
    seen: set[int] = set()
    found: list[object] = []
    stack = [root]
    while stack:
        value = stack.pop()
        if id(value) in seen or isinstance(value, enum.Enum | type):
            continue
        seen.add(id(value))
        if isinstance(value, list | dict | set | bytearray | collections.deque):
            found.append(value)
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list | tuple | set | frozenset | collections.deque):
            stack.extend(value)
        if hasattr(value, "__dict__") and not isinstance(value, str):
            found.append(value.__dict__) if not _is_frozen(value) else None
            stack.extend(vars(value).values())
    return found


def _is_frozen(value: object) -> bool:
    params = getattr(type(value), "__dataclass_params__", None)
    return params is not None and bool(params.frozen)


# --- Actors checked once ----------------------------------------------------------------


def test_session17_an_actor_changed_after_its_check_is_checked_again() -> None:
    """An actor is frozen, but `object.__setattr__` changes it anyway: one that passed the
    checks and then holds a text that may not be recorded is refused (TextError), not
    waved through on its identity."""
    from domain.base import NotFoundError
    from domain.text import TextError
    from tests.actors import operator
    from tests.scenarios import in_memory_fleet

    fleet = in_memory_fleet()
    actor = operator("hp-ops", "corr-ok")
    with pytest.raises(NotFoundError):  # checked, then refused by the command itself
        fleet.certify_partner(actor, "LOC-X", "premium")
    object.__setattr__(actor, "correlation_id", "corr\u202egnp.exe")
    with pytest.raises(TextError):
        fleet.certify_partner(actor, "LOC-X", "premium")


def test_session17_new_actors_with_bad_texts_are_refused_whatever_came_before() -> None:
    """Many good actors checked and dropped (their ids free for reuse), then actors with
    a bad principal or correlation id: each is refused, none taken for a checked one."""
    from domain.base import NotFoundError
    from domain.text import TextError
    from tests.actors import operator
    from tests.scenarios import in_memory_fleet

    fleet = in_memory_fleet()
    for number in range(200):
        with pytest.raises(NotFoundError):
            fleet.certify_partner(operator("hp-ops", f"corr-{number}"), "LOC-X", "premium")
        with pytest.raises(TextError):
            fleet.certify_partner(operator("hp-ops", f"corr\x00{number}"), "LOC-X", "premium")
        with pytest.raises(TextError):
            fleet.certify_partner(operator("hp\u202eops", "corr"), "LOC-X", "premium")


def test_session17_a_real_sigint_in_a_follower_waiting_on_its_raw_lock_stalls_nothing() -> None:
    """A real SIGINT reaches the main thread while it waits, as a follower, on its unit's
    raw lock: the wait ends with KeyboardInterrupt, its unit is never committed, and the
    saves after it (the leader's group, three later callers) all return."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    release = threading.Event()
    committed: list[Unit] = []
    committer = gated_committer(release, committed)
    leader = submit_in_thread(committer, Unit([stored_event()]))
    while not committer._busy:
        pass
    interrupter = threading.Timer(0.2, os.kill, args=(os.getpid(), signal.SIGINT))
    interrupter.start()
    waiting = Unit([stored_event()])
    with pytest.raises(KeyboardInterrupt):
        committer.submit(waiting)  # waits behind the leader until the signal
    release.set()
    leader.join(10)
    later = [submit_in_thread(committer, Unit([stored_event()])) for _ in range(3)]
    for thread in later:
        thread.join(10)

    assert not leader.is_alive()
    assert not any(thread.is_alive() for thread in later)
    assert waiting not in committed
    assert len(committed) == 4
    assert committer._busy is False


class LockInterruptedOnLeaving:
    """The committer's lock, with a signal landing just after one chosen `with` block
    (the lock released, the next instruction not yet run)."""

    def __init__(self, after: int) -> None:
        self._lock = threading.Lock()
        self._blocks = 0
        self._after = after

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()
        self._blocks += 1
        if self._blocks == self._after:
            raise Interrupted


@pytest.mark.parametrize("leads", [True, False])
def test_session17_a_caller_interrupted_just_after_queueing_stalls_nothing(leads: bool) -> None:
    """A signal lands right after a caller queued its unit (as leader, or behind a leader
    committing), before it began to wait or lead: its unit is never committed and the
    saves after it return (the committer is not left busy with no leader)."""
    release = threading.Event()
    committed: list[Unit] = []
    committer = gated_committer(release, committed)
    leader = None
    if not leads:
        leader = submit_in_thread(committer, Unit([stored_event()]))
        while not committer._busy:
            pass
    else:
        release.set()
    committer._lock = LockInterruptedOnLeaving(after=1)  # type: ignore[assignment]
    doomed = Unit([stored_event()])
    with pytest.raises(Interrupted):
        committer.submit(doomed)
    committer._lock._after = 0  # type: ignore[attr-defined]
    release.set()
    if leader is not None:
        leader.join(10)
    later = [submit_in_thread(committer, Unit([stored_event()])) for _ in range(3)]
    for thread in later:
        thread.join(5)

    assert not any(thread.is_alive() for thread in later), "later saves hang"
    assert doomed not in committed
    assert committer._busy is False


def test_session17_a_leader_interrupted_while_waking_its_group_leaves_no_caller_waiting() -> None:
    """The leader has committed its group and is waking its callers when a signal lands
    (here: as it raises its own unit's flag, the first of the group): every other caller
    of the group is still answered, and the caller queued behind leads the next group."""

    class InterruptedSet(Signal):
        """Raised by the previous leader (handing the lead on), by its own wait (raised
        again for other waiters), then by its caller answering its group: the signal
        lands there."""

        __slots__ = ("calls",)

        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def set(self) -> None:
            super().set()
            self.calls += 1
            if self.calls == 3:
                raise Interrupted

    release = threading.Event()
    committed: list[Unit] = []
    committer = gated_committer(release, committed)
    first = submit_in_thread(committer, Unit([stored_event()]))
    while not committer._busy:
        pass
    leader_unit = Unit([stored_event()], woken=InterruptedSet())
    followers = [Unit([stored_event()]) for _ in range(2)]
    interrupted: list[BaseException] = []

    def lead() -> None:
        try:
            committer.submit(leader_unit)
        except Interrupted as error:
            interrupted.append(error)

    threads = [threading.Thread(target=lead, daemon=True)]
    threads[0].start()
    while leader_unit not in committer._queue:
        pass
    threads += [submit_in_thread(committer, u) for u in followers]
    while len(committer._queue) < 3:
        pass
    release.set()  # the first group ends; leader_unit leads the next one, with the followers
    first.join(10)
    for thread in threads:
        thread.join(5)
    later = submit_in_thread(committer, Unit([stored_event()]))
    later.join(5)

    assert interrupted, "the signal landed in the waking leader"
    assert not any(thread.is_alive() for thread in threads), "a caller of the group waits"
    assert not later.is_alive()
    assert all(u in committed for u in followers)
