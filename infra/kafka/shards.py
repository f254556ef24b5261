"""Relay shards and destinations: which relay publishes which aggregates where, and where
each resumes.

One relay is Python-bound on one core. `Shard`s split the aggregates between relay
processes (`partnerfleet relay --shard 2/3`, or `--shards 3` for all three): each publishes
the events of the aggregates it owns, in order, and keeps its own position in pf_tracking.

A position belongs to a `Destination`, a Kafka cluster, a topic prefix and the topics
themselves: what was published to one cluster's topics says nothing of another's, so a relay
pointed at a new cluster, a new KAFKA_TOPIC_PREFIX, or topics that were made anew (a broker
that lost its data, a second broker reporting the same cluster id) starts from the first event.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from projections.base import Tx

RELAY_NAME = "relay:kafka"  # positions recorded before they had a destination: never resumed
TRACKING_ROOT = "relay@"
MAX_SHARDS = 64


def shard_of(aggregate_id: str, shards: int) -> int:
    """The relay shard (0 … shards-1) of an aggregate, by the low 48 bits of its UUID text."""
    return int(aggregate_id[-12:], 16) % shards


@dataclass(frozen=True)
class Shard:
    """One of `count` relays side by side; each publishes the events of the aggregates it owns.

    An aggregate's events all go through one shard, so per-aggregate order holds; each shard
    records its own position. `SINGLE` is the relay of an unsharded deployment.
    """

    index: int = 0  # 0-based; written 1-based ("2/3") on the command line and in positions
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_SHARDS or not 0 <= self.index < self.count:
            raise ValueError(
                f"relay shard {self.index + 1}/{self.count} does not exist: "
                f"use I/N with 1 <= I <= N <= {MAX_SHARDS}."
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`"2/3"` → the second of three shards."""
        number, slash, count = text.partition("/")
        if not (slash and _digits(number.strip()) and _digits(count.strip())):
            raise ValueError(f"relay shard {text!r} is not I/N (e.g. 2/3).")
        return cls(int(number) - 1, int(count))

    @property
    def label(self) -> str:
        """`2/3`, or "" for the one relay of an unsharded deployment."""
        return "" if self.count == 1 else f"{self.index + 1}/{self.count}"

    def owns(self, aggregate_id: str) -> bool:
        """Whether this shard publishes the events of the aggregate with this (text) id."""
        return self.count == 1 or shard_of(aggregate_id, self.count) == self.index


SINGLE = Shard()


@dataclass(frozen=True)
class Destination:
    """Where a relay publishes: a Kafka cluster (the id its brokers report), a prefix, and the
    topics' incarnation (the topic id the cluster gave the prefix's first topic, "" if the
    brokers give none).

    Cluster ids are not unique everywhere (every Tansu broker reports `tansu_cluster` unless
    told otherwise; a wiped cluster may keep its id): a topic id is new whenever the topic
    is made anew, so topics that never saw the history are a new destination.
    `cluster` and `incarnation` are kept to letters, digits, `.`, `_` and `-` (Kafka's ids
    are base64url or UUIDs), so the tracking names `relay@CLUSTER/PREFIX[#TOPICS][:I/N]`
    parse back unambiguously.
    """

    cluster: str
    prefix: str
    incarnation: str = ""

    def __post_init__(self) -> None:
        for name in ("cluster", "incarnation"):
            cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", getattr(self, name))[:200]
            object.__setattr__(self, name, cleaned)

    @property
    def id(self) -> str:
        """`CLUSTER/PREFIX#TOPICS` (`CLUSTER/PREFIX` without a topic id), as relay-lag
        shows it."""
        base = f"{self.cluster}/{self.prefix}"
        return f"{base}#{self.incarnation}" if self.incarnation else base

    def tracking_name(self, shard: Shard = SINGLE) -> str:
        """The row of pf_tracking holding `shard`'s position at this destination."""
        base = f"{TRACKING_ROOT}{self.id}"
        return f"{base}:{shard.label}" if shard.label else base


def relay_positions(tx: Tx, destination: Destination | None = None) -> dict[str, int]:
    """Relay positions recorded for `destination` (every destination's if None): tracking
    name → position, all shard layouts. Positions from before destinations are left out."""
    # substr, not LIKE: `_` in a cluster id or prefix would be a LIKE wildcard.
    select = "SELECT view, position FROM pf_tracking WHERE "
    if destination is None:
        rows = tx.query(f"{select}substr(view, 1, ?) = ?", (len(TRACKING_ROOT), TRACKING_ROOT))
    else:
        base = destination.tracking_name()
        rows = tx.query(
            f"{select}view = ? OR substr(view, 1, ?) = ?", (base, len(base) + 1, f"{base}:")
        )
    return {str(name): int(position) for name, position in rows}


def parse_tracking_name(name: str) -> tuple[str, Shard]:
    """`relay@c/p:2/3` → ("c/p", Shard 2 of 3)."""
    rest = name.removeprefix(TRACKING_ROOT)
    destination, colon, label = rest.rpartition(":")
    return (destination, Shard.parse(label)) if colon else (rest, SINGLE)


def layouts(positions: dict[str, int]) -> dict[int, dict[Shard, int]]:
    """Recorded positions (of one destination) by shard count: count → {shard: position}."""
    found: dict[int, dict[Shard, int]] = {}
    for name, position in positions.items():
        shard = parse_tracking_name(name)[1]
        found.setdefault(shard.count, {})[shard] = position
    return found


def safe_start(tx: Tx, destination: Destination) -> int:
    """Where a new shard may start at `destination` without skipping an event: 0, or the
    furthest point that some complete earlier layout of shards there has published everything
    up to. A destination never seen before starts at 0: it receives the whole history.

    Under a complete layout every aggregate has an owner, so every event up to the lowest
    position of its shards was acknowledged. A new layout resends the rest: at least once.
    """
    complete = [
        min(shards.values())
        for count, shards in layouts(relay_positions(tx, destination)).items()
        if len(shards) == count
    ]
    return max(complete, default=0)


def _digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() holds for "²" (which int() refuses) and "٢"."""
    return text.isascii() and text.isdigit()
