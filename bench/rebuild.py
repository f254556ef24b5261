"""`projection.rebuild` (issue 11): All Customers rebuilt from the whole history, events/s.

Ours: `ViewRunner.rebuild` of the customers view (drop, create, apply every stored event of
the view's topics in batches, each batch and the view's position in one transaction).
Baseline: the eventsourcing library's stock `ProjectionRunner` applying the same view
handlers one event per transaction (bench/read_path.py's `StockCustomersProjection`), for a
fixed window from the start of the history into a fresh schema each repetition. Both count
the stored events of the view's topics they applied, per second of wall-clock time.

The history is bench/read_path.py's (partners with customers, devices, consent, service
levels and events, one big partner): `Scale.of(2,000)` ordinary partners and
`Scale.of(10,000)` groups of the big partner, about 1,000,000 stored events at full size,
110,000 at quick scale. Run alone with `python -m bench.rebuild [--quick]`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from bench.common import (
    PG_CONNINFO,
    fresh_schema,
    open_fleet,
    postgres_env,
    quiet_logging,
    say,
)
from bench.metrics import Metric, Scale, alternate, from_samples, positive_int
from bench.read_path import Shape, generate, head, measure_stock, topic_events
from handlers import PartnerFleet
from infra.follow.view_runner import ViewRunner
from infra.storage.viewdb import PostgresViewDB
from projections.customers import CustomersView

STOCK_SECONDS = 20.0  # stock runner window at full size (its rate is flat over the history)


def shape_for(scale: Scale) -> Shape:
    """read_path's history, scaled: ordinary partners and the big partner's groups."""
    return Shape(
        partners=scale.of(2_000),
        customers=25,
        devices=4,
        big_groups=scale.of(10_000, floor=25),
        favourites=25,
        service_every=10,
    )


def ours(fleet: PartnerFleet, schema: str) -> float:
    """One ViewRunner rebuild of the customers view in `schema`: view events per second."""
    db = PostgresViewDB(PG_CONNINFO, schema)
    try:
        runner = ViewRunner(fleet, db, [CustomersView()])
        view = runner.view(CustomersView.name)
        started = time.perf_counter()
        applied = runner.rebuild(view)
        seconds = time.perf_counter() - started
    finally:
        db.close()
    say(f"ours: {applied:,} view events in {seconds:.2f} s = {applied / seconds:,.0f}/s")
    return applied / seconds


def stock(fleet: PartnerFleet, schema: str, seconds: float) -> float:
    """The stock ProjectionRunner for `seconds` into a fresh schema: view events per second."""
    with fresh_schema() as view_schema:
        rate = measure_stock(fleet, schema, view_schema, seconds)
    say(f"stock: {rate.count:,} view events in {rate.seconds:.2f} s = {rate.per_second:,.0f}/s")
    return rate.per_second


def metrics(scale: Scale) -> Metric:
    """`projection.rebuild`: ours vs the stock runner, alternating, median of repetitions."""
    quiet_logging()
    shape = shape_for(scale)
    window = max(3.0, STOCK_SECONDS * scale.factor)
    with fresh_schema() as schema, open_fleet(postgres_env(schema)) as fleet:
        generate(fleet, shape, 3_000)
        stored, viewed = head(fleet), topic_events(fleet, 0, head(fleet))
        mine, theirs = alternate(
            lambda _: ours(fleet, schema),
            lambda _: stock(fleet, schema, window),
            scale.repetitions,
        )
    return from_samples(
        "projection.rebuild",
        "events/s",
        mine,
        baseline=("stock ProjectionRunner, one event per transaction", theirs),
        detail={
            "stored_events": stored,
            "view_events": viewed,
            "partners": shape.partners + 1,
            "big_partner_groups": shape.big_groups,
            "stock_window_s": window,
            "counted": "stored events of the customers view's topics applied, per second",
        },
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the metric alone and print it."""
    parser = argparse.ArgumentParser(prog="python -m bench.rebuild", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the size")
    parser.add_argument("--repetitions", type=positive_int, default=3)
    args = parser.parse_args(argv)
    metric = metrics(Scale(0.1 if args.quick else 1.0, args.repetitions))
    print(metric.as_json())


if __name__ == "__main__":
    main()
