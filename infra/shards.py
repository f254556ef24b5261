"""Relay shards: which relay process publishes which aggregates, and where each resumes.

One relay is Python-bound on one core. `Shard`s split the aggregates between relay
processes (`partnerfleet relay --shard 2/3`, or `--shards 3` for all three): each publishes
the events of the aggregates it owns, in order, and keeps its own position in pf_tracking.
"""

from __future__ import annotations

from dataclasses import dataclass

from projections.base import Tx

RELAY_NAME = "relay:kafka"
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
        if not (slash and number.strip().isdigit() and count.strip().isdigit()):
            raise ValueError(f"relay shard {text!r} is not I/N (e.g. 2/3).")
        return cls(int(number) - 1, int(count))

    @property
    def tracking_name(self) -> str:
        """The row of pf_tracking holding this shard's position."""
        return RELAY_NAME if self.count == 1 else f"{RELAY_NAME}:{self.index + 1}/{self.count}"

    def owns(self, aggregate_id: str) -> bool:
        """Whether this shard publishes the events of the aggregate with this (text) id."""
        return self.count == 1 or shard_of(aggregate_id, self.count) == self.index


SINGLE = Shard()


def relay_positions(tx: Tx) -> dict[str, int]:
    """Every relay position recorded: tracking name → position (all shard layouts)."""
    rows = tx.query(
        "SELECT view, position FROM pf_tracking WHERE view = ? OR view LIKE ?",
        (RELAY_NAME, f"{RELAY_NAME}:%"),
    )
    return {str(name): int(position) for name, position in rows}


def layouts(positions: dict[str, int]) -> dict[int, dict[Shard, int]]:
    """Recorded positions by shard count: count → {shard: position}."""
    found: dict[int, dict[Shard, int]] = {}
    for name, position in positions.items():
        shard = SINGLE if name == RELAY_NAME else Shard.parse(name.removeprefix(f"{RELAY_NAME}:"))
        found.setdefault(shard.count, {})[shard] = position
    return found


def safe_start(tx: Tx) -> int:
    """Where a new shard may start without skipping an event: 0, or the furthest point that
    some complete earlier layout of shards has published everything up to.

    Under a complete layout every aggregate has an owner, so every event up to the lowest
    position of its shards was acknowledged. A new layout resends the rest: at least once.
    """
    complete = [
        min(shards.values())
        for count, shards in layouts(relay_positions(tx)).items()
        if len(shards) == count
    ]
    return max(complete, default=0)
